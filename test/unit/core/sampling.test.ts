import { test } from 'node:test';
import assert from 'node:assert/strict';
import { batchAt, chunksOf, effectiveBatchSize } from '../../../services/core/sampling.ts';

const isPermutationOf = (xs: readonly number[], n: number) => xs.length === n && [...xs].sort((a, b) => a - b).every((v, i) => v === i);

test('the same (step, set size, batch, seed) gives the same minibatch; another seed another one', () => {
  for (let step = 0; step < 12; step++) assert.deepEqual(batchAt(step, 20, 6, 3), batchAt(step, 20, 6, 3));
  const a = Array.from({ length: 3 }, (_, s) => batchAt(s, 20, 6, 3).samples).flat();
  const b = Array.from({ length: 3 }, (_, s) => batchAt(s, 20, 6, 4).samples).flat();
  assert.notDeepEqual(a, b);
});

test('an epoch is consecutive slices of one permutation; the partial last slice is dropped', () => {
  const setSize = 10;
  const m = 4; // 2 full slices per epoch, 2 samples left out
  for (let epoch = 0; epoch < 3; epoch++) {
    const slices = [0, 1].map((slot) => batchAt(epoch * 2 + slot, setSize, m, 7));
    for (const s of slices) {
      assert.equal(s.epoch, epoch);
      assert.equal(s.samples.length, m, 'every minibatch is full');
    }
    const seen = slices.flatMap((s) => s.samples);
    assert.equal(new Set(seen).size, 8, 'no sample twice in an epoch');
    assert.ok(seen.every((i) => Number.isInteger(i) && i >= 0 && i < setSize));
  }
  const epochs = [0, 1, 2].map((e) => [0, 1].flatMap((slot) => batchAt(e * 2 + slot, setSize, m, 7).samples));
  assert.notDeepEqual(epochs[0], epochs[1], 'reshuffled every epoch');
  assert.notDeepEqual(epochs[1], epochs[2]);
});

test('every sample is seen across epochs (the dropped ones change with the permutation)', () => {
  const seen = new Set<number>();
  for (let step = 0; step < 40; step++) batchAt(step, 10, 4, 1).samples.forEach((s) => seen.add(s));
  assert.equal(seen.size, 10);
});

test('a batch larger than the set is the whole set, one step per epoch', () => {
  assert.equal(effectiveBatchSize(32, 5), 5);
  assert.equal(effectiveBatchSize(4, 5), 4);
  for (let step = 0; step < 3; step++) {
    const plan = batchAt(step, 5, 32, 2);
    assert.equal(plan.epoch, step);
    assert.ok(isPermutationOf(plan.samples, 5));
  }
  assert.ok(isPermutationOf(batchAt(0, 5, 5, 2).samples, 5), 'batch = set size');
});

test('chunks are consecutive positions of the minibatch, numbered in order; the last may be short', () => {
  const samples = [9, 3, 7, 1, 0, 4, 8];
  const chunks = chunksOf(samples, 3);
  assert.deepEqual(chunks, [
    { index: 0, samples: [9, 3, 7] },
    { index: 1, samples: [1, 0, 4] },
    { index: 2, samples: [8] },
  ]);
  assert.deepEqual(chunksOf(samples, 7), [{ index: 0, samples }]);
  assert.deepEqual(chunksOf(samples, 100), [{ index: 0, samples }]);
  assert.deepEqual(chunksOf(samples, 1).map((c) => c.samples[0]), samples);
});
