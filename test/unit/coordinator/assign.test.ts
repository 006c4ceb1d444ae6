import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assignChunks, effectiveRates } from '../../../services/coordinator/assign.ts';

const chunks = (n: number) => Array.from({ length: n }, (_, i) => ({ index: i, samples: [2 * i, 2 * i + 1] }));
const indices = (a: ReturnType<typeof assignChunks>) => a.map((x) => [x.workerId, x.chunks.map((c) => c.index)]);

test('whole chunks in consecutive runs, in proportion to measured samples/s', () => {
  const a = assignChunks(chunks(8), [{ id: 'a', samplesPerSecond: 30 }, { id: 'b', samplesPerSecond: 10 }]);
  assert.deepEqual(indices(a), [['a', [0, 1, 2, 3, 4, 5]], ['b', [6, 7]]]);
});

test('every chunk exactly once, whatever the rates; largest remainders get the leftovers', () => {
  for (const rates of [[1, 1, 1], [5, 0.1, 2], [1e-9, 1, 1e9]]) {
    const a = assignChunks(chunks(7).reverse(), rates.map((r, i) => ({ id: `w${i}`, samplesPerSecond: r })));
    assert.deepEqual(a.flatMap((x) => x.chunks.map((c) => c.index)), [0, 1, 2, 3, 4, 5, 6]);
  }
  assert.deepEqual(indices(assignChunks(chunks(4), [{ id: 'a', samplesPerSecond: 1 }, { id: 'b', samplesPerSecond: 1 }, { id: 'c', samplesPerSecond: 1 }])), [['a', [0, 1]], ['b', [2]], ['c', [3]]]);
});

test('unmeasured workers count as the mean of the measured ones; more workers than chunks leaves some idle', () => {
  assert.deepEqual(effectiveRates([{ id: 'a', samplesPerSecond: 10 }, { id: 'b', samplesPerSecond: null }, { id: 'c', samplesPerSecond: 30 }]), [10, 20, 30]);
  assert.deepEqual(effectiveRates([{ id: 'a', samplesPerSecond: null }]), [1]);
  const a = assignChunks(chunks(2), ['a', 'b', 'c', 'd'].map((id) => ({ id, samplesPerSecond: null })));
  assert.equal(a.length, 2);
});
