/**
 * The native backend's fused quick_gelu and LayerNorm (native/src/fused.h,
 * services/core/fused.ts): values and gradients against the composite tfjs
 * math of layers.ts computed on wasm's own kernels, the same bits on any
 * thread count, tensors released, and layers.ts dispatching to them only
 * while they are installed.
 */
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../../services/core/backend.ts';
import { FusedKernel, hasFusedKernel } from '../../../services/core/fused.ts';
import { layerNorm, quickGelu } from '../../../services/core/layers.ts';
import { installNativeKernels } from '../../../services/core/native-kernels.ts';
import { addon, onBoth, skip, withNative, withNativeAsync } from './addon.ts';

before(async () => {
  await initBackend('wasm');
});

/** |actual − expected| ≤ tolerance·max|expected| + 1e-5 everywhere (the floor covers outputs that are 0 up to rounding). */
function assertClose(actual: Float32Array, expected: Float32Array, tolerance: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  let scale = 0;
  for (const v of expected) scale = Math.max(scale, Math.abs(v));
  let worst = 0;
  for (let i = 0; i < actual.length; i++) {
    assert.ok(Number.isFinite(actual[i]), `${what}: element ${i} is ${actual[i]}`);
    worst = Math.max(worst, Math.abs(actual[i] - expected[i]));
  }
  const bound = tolerance * scale + 1e-5;
  assert.ok(worst <= bound, `${what}: worst error ${worst.toExponential(2)} > ${bound.toExponential(2)} (largest magnitude ${scale.toExponential(2)})`);
}

const values = (t: tf.Tensor) => t.dataSync() as Float32Array;

// odd sizes, one element, and sizes past the kernels' tiles (16k elements, 16 rows)
const GeluShapes = [[1], [3, 7], [8, 50, 768], [400, 3072], [5, 16385]];
const NormShapes = [[1, 1], [3, 7], [17, 64], [8, 50, 768], [400, 512]];

describe('native fused kernels', { skip }, () => {
  test('quick_gelu and its gradient equal the composite x·σ(1.702x)', () => {
    for (const shape of GeluShapes) {
      const x = tf.mul(tf.randomNormal(shape, 0, 1, 'float32', 3), 4); // far into both tails of σ
      const w = tf.randomNormal(shape, 0, 1, 'float32', 4);
      const run = () =>
        tf.tidy(() => {
          const [dx] = tf.grads((t: tf.Tensor) => tf.sum(tf.mul(quickGelu(t), w)))([x]);
          return [values(quickGelu(x)), values(dx)];
        });
      const { wasm: composite, native: fused } = onBoth(run);
      assertClose(fused[0], composite[0], 1e-6, `quick_gelu ${shape}`);
      assertClose(fused[1], composite[1], 1e-6, `d quick_gelu ${shape}`);
      tf.dispose([x, w]);
    }
  });

  test('LayerNorm and its gradients w.r.t. x, γ and β equal the composite moments math', () => {
    for (const shape of NormShapes) {
      const width = shape[shape.length - 1];
      const x = tf.add(tf.mul(tf.randomNormal(shape, 0, 1, 'float32', 5), 3), 2); // a mean far from 0
      const gamma = tf.randomNormal([width], 1, 0.5, 'float32', 6) as tf.Tensor1D;
      const beta = tf.randomNormal([width], 0, 0.5, 'float32', 7) as tf.Tensor1D;
      const w = tf.randomNormal(shape, 0, 1, 'float32', 8);
      const run = () =>
        tf.tidy(() => {
          const f = (t: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(layerNorm(t, g as tf.Tensor1D, b as tf.Tensor1D, 1e-5), w));
          const grads = tf.grads(f)([x, gamma, beta]);
          return [values(layerNorm(x, gamma, beta, 1e-5)), ...grads.map(values)];
        });
      const { wasm: composite, native: fused } = onBoth(run);
      ['y', 'dx', 'dγ', 'dβ'].forEach((name, i) => assertClose(fused[i], composite[i], 2e-5, `LayerNorm ${name} ${shape}`));
      tf.dispose([x, gamma, beta, w]);
    }
  });

  test('a frozen γ, β (fine-tuning) asks for dx only: no γ-gradient kernel runs', async () => {
    await withNativeAsync(async () => {
      const x = tf.randomNormal([8, 50, 64], 0, 1, 'float32', 9);
      const gamma = tf.ones([64]) as tf.Tensor1D;
      const beta = tf.zeros([64]) as tf.Tensor1D;
      const profile = await tf.profile(() => tf.tidy(() => tf.grad((t: tf.Tensor) => tf.sum(layerNorm(t, gamma, beta, 1e-5)))(x)));
      const names = new Set(profile.kernels.map((k) => k.name));
      assert.ok(names.has(FusedKernel.layerNorm) && names.has(FusedKernel.layerNormGrad), [...names].join(', '));
      assert.ok(!names.has(FusedKernel.layerNormGammaGrad), 'γ is not trained here');
      tf.dispose([x, gamma, beta]);
    });
  });

  test('the same bits on any number of threads (tiles depend on the shape only)', () => {
    const x = tf.randomNormal([400, 3072], 0, 2, 'float32', 10);
    const gamma = tf.randomNormal([3072], 1, 0.5, 'float32', 11) as tf.Tensor1D;
    const beta = tf.randomNormal([3072], 0, 0.5, 'float32', 12) as tf.Tensor1D;
    const saved = addon!.threads();
    try {
      const runs = [1, 2, 3].map((threads) => {
        addon!.setThreads(threads);
        return withNative(() => tf.tidy(() => {
          const [dGelu] = tf.grads((t: tf.Tensor) => tf.sum(tf.mul(quickGelu(t), t)))([x]);
          const [dNorm] = tf.grads((t: tf.Tensor) => tf.sum(tf.mul(layerNorm(t, gamma, beta, 1e-5), t)))([x]);
          return [values(quickGelu(x)), values(dGelu), values(layerNorm(x, gamma, beta, 1e-5)), values(dNorm)];
        }));
      });
      for (const run of runs.slice(1)) run.forEach((v, i) => assert.ok(v.every((e, j) => Object.is(e, runs[0][i][j])), `output ${i}`));
    } finally {
      addon!.setThreads(saved);
      tf.dispose([x, gamma, beta]);
    }
  });

  test('numTensors and the bytes held stay flat over repeated forward and backward passes', () => {
    withNative(() => {
      const x = tf.randomNormal([16, 96], 0, 1, 'float32', 13);
      const gamma = tf.ones([96]) as tf.Tensor1D;
      const beta = tf.zeros([96]) as tf.Tensor1D;
      const pass = () => tf.tidy(() => tf.grads((t: tf.Tensor, g: tf.Tensor) => tf.sum(quickGelu(layerNorm(t, g as tf.Tensor1D, beta, 1e-5))))([x, gamma]));
      tf.dispose(pass());
      const start = tf.memory();
      for (let i = 0; i < 20; i++) tf.dispose(pass());
      assert.equal(tf.memory().numTensors, start.numTensors);
      assert.equal(tf.memory().numBytes, start.numBytes);
      tf.dispose([x, gamma, beta]);
    });
  });

  test('layers.ts uses the fused kernels only while they are installed', () => {
    assert.equal(hasFusedKernel(FusedKernel.quickGelu), false);
    const restore = installNativeKernels(addon!);
    for (const name of Object.values(FusedKernel)) assert.equal(hasFusedKernel(name), true, name);
    restore();
    for (const name of Object.values(FusedKernel)) assert.equal(hasFusedKernel(name), false, name);
  });

  test('a Cast to the same dtype shares the data; to another dtype it converts', () => {
    withNative(() => {
      const buffers = () => tf.engine().backend.numDataIds();
      const x = tf.tensor1d([1.5, -2.5, 3]);
      const start = buffers();
      const same = tf.cast(x, 'float32');
      assert.equal(buffers(), start, 'no new buffer');
      const other = tf.cast(x, 'int32');
      assert.equal(buffers(), start + 1);
      x.dispose();
      assert.deepEqual(Array.from(same.dataSync()), [1.5, -2.5, 3]);
      assert.deepEqual(Array.from(other.dataSync()), [1, -2, 3]);
      tf.dispose([same, other]);
    });
  });
});
