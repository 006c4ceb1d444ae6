/** The native backend's Identity shares its input's data (no copy) and stays correct when either side is disposed. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../../services/core/backend.ts';
import { installNativeKernels } from '../../../services/core/native-kernels.ts';
import { addon, skip } from './addon.ts';

let restore: (() => void) | null = null;
before(async () => {
  await initBackend('wasm');
  if (addon) restore = installNativeKernels(addon);
});
after(() => restore?.());

test('a clone outlives its source, and the source its clone', { skip }, () => {
  const buffers = () => tf.engine().backend.numDataIds();
  const before = buffers();
  const x = tf.tensor2d([1, 2, 3, 4], [2, 2]);
  const y = x.clone();
  assert.equal(buffers(), before + 1, 'the clone holds no buffer of its own');
  x.dispose();
  assert.deepEqual(Array.from(y.dataSync()), [1, 2, 3, 4]);
  const z = tf.clone(y);
  z.dispose();
  assert.deepEqual(Array.from(y.dataSync()), [1, 2, 3, 4]);
  y.dispose();
  assert.equal(buffers(), before);
});

test('a variable assigned from a clone, then its source disposed, keeps its value', { skip }, () => {
  const v = tf.variable(tf.zeros([3]));
  const x = tf.tensor1d([5, 6, 7]);
  v.assign(tf.clone(x));
  x.dispose();
  assert.deepEqual(Array.from(v.dataSync()), [5, 6, 7]);
  v.dispose();
});

test('gradients that save and clone tensors: values as wasm, numTensors and bytes flat', { skip }, () => {
  const x = tf.tensor2d([0.5, -1, 2, 3], [2, 2]);
  const f = (t: tf.Tensor) => tf.sum(tf.mul(tf.sigmoid(t), tf.exp(t)));
  const grad = () => tf.tidy(() => tf.grad(f)(x).dataSync() as Float32Array);
  const ours = grad();
  restore!();
  const wasm = grad();
  restore = installNativeKernels(addon!);
  assert.deepEqual(Array.from(ours), Array.from(wasm));
  const before = tf.memory();
  for (let i = 0; i < 20; i++) grad();
  assert.equal(tf.memory().numTensors, before.numTensors);
  assert.equal(tf.memory().numBytes, before.numBytes);
  x.dispose();
});
