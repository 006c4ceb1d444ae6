import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { fabTargeted, projectToHalfspace } from '../../../services/core/fab.ts';
import { RandomStream } from '../../../services/core/rng.ts';
import { attackBench, correctAt, deviation, type AttackBench } from './attack-setup.ts';

let bench: AttackBench;
before(async () => {
  bench = await attackBench();
});
after(() => bench.dispose());

test('the ℓ∞ projection onto a half-space inside [0,1] reaches it with the smallest radius', () => {
  const rng = RandomStream.of(3);
  for (let trial = 0; trial < 20; trial++) {
    const n = 50;
    const p = Float32Array.from({ length: n }, () => rng.uniform());
    const w = Float32Array.from({ length: n }, () => 2 * rng.uniform() - 1);
    const dot = (a: Float32Array, b: Float32Array) => a.reduce((s, v, i) => s + v * b[i], 0);
    const b = dot(w, p) + 0.5 * rng.uniform();
    const d = projectToHalfspace(p, w, b);
    const moved = p.map((v, i) => v + d[i]);
    assert.ok(moved.every((v) => v >= -1e-6 && v <= 1 + 1e-6), 'stays in [0,1]');
    assert.ok(dot(w, moved) >= b - 1e-4, `reaches the half-space: ${dot(w, moved)} < ${b}`);
    const radius = d.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    // any move of a smaller radius falls short: the best such move still misses b
    const shrunk = p.map((v, i) => v + Math.sign(w[i]) * Math.min(0.98 * radius, w[i] > 0 ? 1 - v : v));
    assert.ok(dot(w, shrunk) < b, 'no smaller radius reaches it');
  }
  const inside = projectToHalfspace(Float32Array.of(0.5, 0.5), Float32Array.of(1, 1), 0.5);
  assert.deepEqual(Array.from(inside), [0, 0], 'a point already inside does not move');
});

test('FAB-T stays in the ε-ball and in [0,1]; what it fools is misclassified within ε, the rest is returned unchanged', (t) => {
  for (const eps of [1 / 255, 16 / 255]) {
    const xAdv = fabTargeted(bench.model, bench.x, bench.labels, { epsilon: eps, iterations: 10, targets: 3 });
    const d = deviation(xAdv, bench.x);
    assert.ok(d.linf <= eps + 1e-6, `‖x_adv − x‖∞ = ${d.linf}`);
    assert.ok(d.lo >= 0 && d.hi <= 1);
    const correct = correctAt(bench, xAdv);
    const moved = tf.tidy(() => Array.from(tf.max(tf.abs(tf.reshape(tf.sub(xAdv, bench.x), [bench.labels.length, -1])), 1).dataSync()));
    correct.forEach((c, i) => c && assert.equal(moved[i], 0, `sample ${i} is robust but was moved`));
    t.diagnostic(`ε ${(eps * 255).toFixed(0)}/255: ${correct.filter(Boolean).length} of ${bench.labels.length} robust`);
    if (eps === 16 / 255) assert.ok(correct.some((c) => !c), 'FAB-T fools some sample at 16/255');
    xAdv.dispose();
  }
});
