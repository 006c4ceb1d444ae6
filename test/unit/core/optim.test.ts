import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AdamW, applyUpdate, FINAL_LR, initOptimizer, learningRate } from '../../../services/core/optim.ts';

/** torch.optim.AdamW's update (decoupled decay, bias-corrected moments), in float64. */
function torchAdamW(p: number[], grads: number[][], lr: number, wd: number): number[] {
  const { beta1, beta2, eps } = AdamW;
  const m = p.map(() => 0);
  const v = p.map(() => 0);
  grads.forEach((g, k) => {
    const t = k + 1;
    for (let j = 0; j < p.length; j++) {
      p[j] *= 1 - lr * wd;
      m[j] = beta1 * m[j] + (1 - beta1) * g[j];
      v[j] = beta2 * v[j] + (1 - beta2) * g[j] * g[j];
      const stepSize = lr / (1 - beta1 ** t);
      const denom = Math.sqrt(v[j]) / Math.sqrt(1 - beta2 ** t) + eps;
      p[j] -= stepSize * (m[j] / denom);
    }
  });
  return p;
}

test("AdamW's defaults are torch's (β 0.9, 0.999; ε 1e-8)", () => {
  assert.deepEqual({ ...AdamW }, { beta1: 0.9, beta2: 0.999, eps: 1e-8 });
});

test('AdamW matches torch.optim.AdamW over two steps', () => {
  const p0 = [0.5, -0.25, 1.5, 0, 2e-3];
  const g1 = [0.1, -0.3, 2.0, 1e-9, -5e-4];
  const g2 = [-0.2, -0.1, 1.0, 0.3, 5e-4];
  const lr = 1e-2;
  const wd = 0.1;
  const expected = torchAdamW([...p0], [g1, g2], lr, wd);
  const state = initOptimizer('adamw', [p0.length]);
  const params = [Float32Array.from(p0)];
  applyUpdate(state, params, [Float32Array.from(g1)], { lr, weightDecay: wd, t: 1, which: [0] });
  // the first step moves each weight by about lr in the direction of −g (on top of the decay)
  params[0].forEach((v, j) => {
    if (Math.abs(g1[j]) > 1e-6) assert.ok(Math.abs(v - (p0[j] * (1 - lr * wd) - lr * Math.sign(g1[j]))) < 1e-6, `step 1 [${j}]`);
  });
  applyUpdate(state, params, [Float32Array.from(g2)], { lr, weightDecay: wd, t: 2, which: [0] });
  params[0].forEach((v, j) => assert.ok(Math.abs(v - expected[j]) <= 1e-6 * Math.max(1, Math.abs(expected[j])), `[${j}] ${v} vs torch ${expected[j]}`));
});

test('only the tensors named in `which` move (Gauss–Seidel updates A and B apart), each with its own moments', () => {
  const state = initOptimizer('adamw', [2, 2]);
  const params = [Float32Array.of(1, 1), Float32Array.of(1, 1)];
  const grads = [Float32Array.of(1, -1), Float32Array.of(1, -1)];
  applyUpdate(state, params, grads, { lr: 0.1, weightDecay: 0, t: 1, which: [0] });
  assert.deepEqual([...params[1]], [1, 1]);
  assert.deepEqual([...state.m[1]], [0, 0], 'moments of an untouched tensor stay');
  applyUpdate(state, params, grads, { lr: 0.1, weightDecay: 0, t: 1, which: [1] });
  assert.deepEqual([...params[1]], [...params[0]], 'B at its first step moves as A did at its first');
});

test('SGD is plain: p ← p − lr·g, no momentum, no weight decay', () => {
  const state = initOptimizer('sgd', [3]);
  assert.deepEqual([state.m, state.v], [[], []]);
  const params = [Float32Array.of(1, -2, 0.5)];
  const g = Float32Array.of(0.5, 1, -4);
  applyUpdate(state, params, [g], { lr: 0.1, weightDecay: 0.5, t: 1, which: [0] });
  assert.deepEqual([...params[0]], [1 - 0.05, -2 - 0.1, 0.5 + 0.4].map(Math.fround));
  applyUpdate(state, params, [g], { lr: 0.1, weightDecay: 0.5, t: 2, which: [0] });
  assert.deepEqual([...params[0]], [Math.fround(Math.fround(0.95) - 0.05), Math.fround(Math.fround(-2.1) - 0.1), Math.fround(Math.fround(0.9) + 0.4)], 'the same step again: no momentum');
});

test('cosine schedule: lr at the first step, 1e-6 at the last, halfway in the middle; constant is constant', () => {
  const lr = 2e-4;
  const T = 11;
  assert.equal(FINAL_LR, 1e-6);
  assert.equal(learningRate('cosine', lr, 0, T), lr);
  assert.ok(Math.abs(learningRate('cosine', lr, T - 1, T) - 1e-6) < 1e-18);
  assert.ok(Math.abs(learningRate('cosine', lr, 5, T) - (lr + 1e-6) / 2) < 1e-15);
  for (let t = 1; t < T; t++) assert.ok(learningRate('cosine', lr, t, T) < learningRate('cosine', lr, t - 1, T));
  for (let t = 0; t < T; t++) assert.equal(learningRate('constant', lr, t, T), lr);
  assert.equal(learningRate('cosine', lr, 0, 1), lr, 'a one-step run uses lr');
});
