/**
 * The native BatchMatMul is the wasm one, only faster: same values (relative
 * error ≤ 1e-5 against wasm and against a float64 reference) for every rank,
 * transpose flag, broadcast and odd or empty size; same gradients; no leaked
 * tensors or heap.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../../services/core/backend.ts';
import { relativeError } from '../core/numeric.ts';
import { addon, onBoth, skip, withNative } from './addon.ts';

const TOLERANCE = 1e-5;
const Flags = [
  [false, false],
  [false, true],
  [true, false],
  [true, true],
] as const;

before(async () => {
  await initBackend('wasm');
});

/** float64 product of op(a)·op(b) with tfjs' right-aligned batch broadcasting. */
function reference(a: tf.Tensor, b: tf.Tensor, ta: boolean, tb: boolean): { shape: number[]; values: Float64Array } {
  const av = a.dataSync();
  const bv = b.dataSync();
  const [ra, rb] = [a.shape.length, b.shape.length];
  const m = ta ? a.shape[ra - 1] : a.shape[ra - 2];
  const k = ta ? a.shape[ra - 2] : a.shape[ra - 1];
  const n = tb ? b.shape[rb - 2] : b.shape[rb - 1];
  const aBatch = a.shape.slice(0, -2);
  const bBatch = b.shape.slice(0, -2);
  const batch = tf.broadcast_util.assertAndGetBroadcastShape(aBatch, bBatch);
  const count = batch.reduce((p, d) => p * d, 1);
  const values = new Float64Array(count * m * n);
  const operandIndex = (dims: number[], index: number[]) => {
    let flat = 0;
    for (let d = 0; d < dims.length; d++) flat = flat * dims[d] + (dims[d] === 1 ? 0 : index[index.length - dims.length + d]);
    return flat;
  };
  for (let i = 0; i < count; i++) {
    const index: number[] = [];
    for (let d = batch.length - 1, rest = i; d >= 0; d--) {
      index.unshift(rest % batch[d]);
      rest = Math.floor(rest / batch[d]);
    }
    const ao = operandIndex(aBatch, index) * m * k;
    const bo = operandIndex(bBatch, index) * k * n;
    for (let r = 0; r < m; r++)
      for (let c = 0; c < n; c++) {
        let s = 0;
        for (let j = 0; j < k; j++) s += av[ao + (ta ? j * m + r : r * k + j)] * bv[bo + (tb ? c * k + j : j * n + c)];
        values[(i * m + r) * n + c] = s;
      }
  }
  return { shape: [...batch, m, n], values };
}

function operands(aShape: number[], bShape: number[], seed: number): [tf.Tensor, tf.Tensor] {
  return [tf.randomNormal(aShape, 0, 1, 'float32', seed), tf.randomNormal(bShape, 0, 1, 'float32', seed + 1)];
}

/** Shapes of a and b for op(a) = [..., m, k], op(b) = [..., k, n] under the flags. */
function shapesFor(aBatch: number[], bBatch: number[], m: number, k: number, n: number, ta: boolean, tb: boolean): [number[], number[]] {
  return [[...aBatch, ...(ta ? [k, m] : [m, k])], [...bBatch, ...(tb ? [n, k] : [k, n])]];
}

const Cases: readonly { name: string; aBatch: number[]; bBatch: number[]; m: number; k: number; n: number }[] = [
  { name: '2D 1×1×1', aBatch: [], bBatch: [], m: 1, k: 1, n: 1 },
  { name: '2D odd 3×5×7', aBatch: [], bBatch: [], m: 3, k: 5, n: 7 },
  { name: '2D odd 127×129×255', aBatch: [], bBatch: [], m: 127, k: 129, n: 255 },
  { name: '2D thin 301×513×2', aBatch: [], bBatch: [], m: 301, k: 513, n: 2 },
  { name: '2D wide 2×64×517 (cut along columns)', aBatch: [], bBatch: [], m: 2, k: 64, n: 517 },
  { name: '2D 256×256×256 (cut into row slabs)', aBatch: [], bBatch: [], m: 256, k: 256, n: 256 },
  { name: '2D 70×128×600 (cut into column slabs)', aBatch: [], bBatch: [], m: 70, k: 128, n: 600 },
  { name: '3D batch 4', aBatch: [4], bBatch: [4], m: 33, k: 17, n: 9 },
  { name: '3D batch 3, each product cut in two', aBatch: [3], bBatch: [3], m: 256, k: 144, n: 96 },
  { name: '3D a broadcast [1]', aBatch: [1], bBatch: [5], m: 7, k: 11, n: 13 },
  { name: '3D b broadcast [1]', aBatch: [5], bBatch: [1], m: 7, k: 11, n: 13 },
  { name: '3D·2D (b has no batch dims)', aBatch: [6], bBatch: [], m: 50, k: 64, n: 50 },
  { name: '4D attention-like [2,3]', aBatch: [2, 3], bBatch: [2, 3], m: 50, k: 64, n: 50 },
  { name: '4D attention [8,12], products spread over threads', aBatch: [8, 12], bBatch: [8, 12], m: 50, k: 64, n: 50 },
  { name: '4D·3D rank broadcast', aBatch: [2, 3], bBatch: [3], m: 5, k: 4, n: 6 },
];

/** Broadcasts wasm's kernel does not do (it flattens batch dims): checked against the reference only. */
const ReferenceOnly: readonly (typeof Cases)[number][] = [
  { name: '4D cross broadcast [2,1]·[1,3]', aBatch: [2, 1], bBatch: [1, 3], m: 5, k: 4, n: 6 },
  { name: '5D mixed [2,1,3]·[4,1]', aBatch: [2, 1, 3], bBatch: [4, 1], m: 3, k: 7, n: 2 },
];

// on the calling thread alone, and with more threads than this machine may have
for (const threads of [1, 3]) describe(`native BatchMatMul values, ${threads} thread(s)`, { skip }, () => {
  let saved = 0;
  before(() => {
    saved = addon!.threads();
    addon!.setThreads(threads);
  });
  after(() => addon!.setThreads(saved));

  for (const c of Cases) {
    for (const [ta, tb] of Flags) {
      test(`${c.name}, transposeA ${ta}, transposeB ${tb}: equals wasm and the float64 reference`, () => {
        const [aShape, bShape] = shapesFor(c.aBatch, c.bBatch, c.m, c.k, c.n, ta, tb);
        const [a, b] = operands(aShape, bShape, c.m * 31 + c.n);
        const run = () => tf.tidy(() => {
          const y = tf.matMul(a, b, ta, tb);
          return { shape: y.shape, values: y.dataSync() as Float32Array };
        });
        const { wasm, native } = onBoth(run);
        const ref = reference(a, b, ta, tb);
        assert.deepEqual(native.shape, ref.shape);
        assert.deepEqual(native.shape, wasm.shape);
        const vsWasm = relativeError(native.values, wasm.values);
        const vsRef = relativeError(native.values, ref.values);
        assert.ok(vsWasm <= TOLERANCE, `native vs wasm: ${vsWasm}`);
        assert.ok(vsRef <= TOLERANCE, `native vs float64: ${vsRef}`);
        tf.dispose([a, b]);
      });
    }
  }

  for (const c of ReferenceOnly) {
    for (const [ta, tb] of Flags) {
      test(`${c.name}, transposeA ${ta}, transposeB ${tb}: equals the float64 reference`, () => {
        const [aShape, bShape] = shapesFor(c.aBatch, c.bBatch, c.m, c.k, c.n, ta, tb);
        const [a, b] = operands(aShape, bShape, 5);
        const { native } = onBoth(() => tf.tidy(() => {
          const y = tf.matMul(a, b, ta, tb);
          return { shape: y.shape, values: y.dataSync() as Float32Array };
        }));
        const ref = reference(a, b, ta, tb);
        assert.deepEqual(native.shape, ref.shape);
        assert.ok(relativeError(native.values, ref.values) <= TOLERANCE);
        tf.dispose([a, b]);
      });
    }
  }

  test('zero-size dims: empty outputs, and k = 0 gives zeros', () => {
    const cases: [number[], number[], number[]][] = [
      [[0, 5], [5, 3], [0, 3]],
      [[4, 5], [5, 0], [4, 0]],
      [[4, 0], [0, 3], [4, 3]],
      [[0, 2, 3], [0, 3, 4], [0, 2, 4]],
      [[2, 4, 0], [2, 0, 3], [2, 4, 3]],
    ];
    for (const [aShape, bShape, outShape] of cases) {
      const { native } = onBoth(() => tf.tidy(() => {
        const y = tf.matMul(tf.ones(aShape), tf.ones(bShape));
        return { shape: y.shape, values: y.dataSync() as Float32Array };
      }));
      assert.deepEqual(native.shape, outShape, `${aShape}·${bShape}`);
      assert.ok(native.values.every((v) => v === 0), `${aShape}·${bShape} is all zeros`);
    }
  });

  test('a product on the output of another (shared and reshaped data ids)', () => {
    const { wasm, native } = onBoth(() => tf.tidy(() => {
      const x = tf.randomNormal([6, 8], 0, 1, 'float32', 3);
      const y = tf.matMul(x.reshape([2, 3, 8]), tf.transpose(x).reshape([1, 8, 6]));
      return tf.matMul(y, y, false, true).dataSync() as Float32Array;
    }));
    assert.ok(relativeError(native, wasm) <= TOLERANCE);
  });

  test('the same product twice gives the same bits (threads fixed)', () => {
    const [a, b] = operands([400, 768], [300, 768], 9);
    const { native } = onBoth(() => [0, 1, 2].map(() => tf.tidy(() => tf.matMul(a, b, false, true).dataSync() as Float32Array)));
    assert.ok(native.every((y) => y.every((v, i) => Object.is(v, native[0][i]))));
    tf.dispose([a, b]);
  });

  test('the same bits on any number of threads (tiles depend on the shapes only)', () => {
    const shapes: [number[], number[], boolean][] = [
      [[400, 768], [768, 768], false],
      [[70, 128], [600, 128], true],
      [[3, 256, 144], [3, 144, 96], false],
      [[8, 12, 50, 64], [8, 12, 50, 64], true],
    ];
    const saved = addon!.threads();
    try {
      for (const [aShape, bShape, tb] of shapes) {
        const [a, b] = operands(aShape, bShape, 13);
        const runs = [1, 2, 3].map((t) => {
          addon!.setThreads(t);
          return onBoth(() => tf.tidy(() => tf.matMul(a, b, false, tb).dataSync() as Float32Array)).native;
        });
        assert.ok(runs.every((y) => y.every((v, i) => Object.is(v, runs[0][i]))), `${aShape}·${bShape}`);
        tf.dispose([a, b]);
      }
    } finally {
      addon!.setThreads(saved);
    }
  });

  test('int32 operands are refused as wasm refuses them', () => {
    withNative(() => assert.throws(() => tf.tidy(() => tf.matMul(tf.ones([2, 2], 'int32'), tf.ones([2, 2], 'int32'))), /float32/));
  });
});

// (tfjs' own BatchMatMul gradient refuses broadcast batch dims on every backend, so none here)
describe('native BatchMatMul gradients', { skip }, () => {
  const GradCases = [
    { name: '2D', aShape: [9, 13], bShape: [13, 7] },
    { name: '3D', aShape: [3, 9, 13], bShape: [3, 13, 7] },
    { name: '4D', aShape: [2, 3, 9, 13], bShape: [2, 3, 13, 7] },
  ];
  for (const c of GradCases) {
    for (const [ta, tb] of Flags) {
      test(`tf.grads of Σ w⊙(a·b), ${c.name}, transposeA ${ta}, transposeB ${tb}`, () => {
        const swap = (s: number[]) => [...s.slice(0, -2), s[s.length - 1], s[s.length - 2]];
        const aShape = ta ? swap(c.aShape) : c.aShape;
        const bShape = tb ? swap(c.bShape) : c.bShape;
        const [a, b] = operands(aShape, bShape, 17);
        const run = () => tf.tidy(() => {
          const w = tf.randomNormal(tf.matMul(a, b, ta, tb).shape, 0, 1, 'float32', 23);
          const f = (x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(tf.matMul(x, y, ta, tb), w));
          return tf.grads(f)([a, b]).map((g) => g.dataSync() as Float32Array);
        });
        const { wasm, native } = onBoth(run);
        for (let i = 0; i < 2; i++) {
          const err = relativeError(native[i], wasm[i]);
          assert.ok(err <= TOLERANCE, `d/d${i === 0 ? 'a' : 'b'}: ${err}`);
        }
        tf.dispose([a, b]);
      });
    }
  }
});

describe('native BatchMatMul memory', { skip }, () => {
  test('numTensors and the bytes held stay flat over repeated products and gradients', () => {
    const [a, b] = operands([4, 50, 64], [4, 64, 50], 1);
    withNative(() => {
      const step = () => tf.tidy(() => {
        const y = tf.matMul(a, b, false, false);
        const g = tf.grads((x: tf.Tensor, z: tf.Tensor) => tf.sum(tf.matMul(x, z, true, true)))([b, a]);
        return tf.addN([tf.sum(y), tf.sum(g[0]), tf.sum(g[1])]).dataSync()[0];
      });
      step();
      const before = tf.memory();
      for (let i = 0; i < 50; i++) step();
      const after = tf.memory();
      assert.equal(after.numTensors, before.numTensors);
      assert.equal(after.numBytes, before.numBytes);
    });
    tf.dispose([a, b]);
  });
});
