import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assignChunks, assignCopies, effectiveRates } from '../../../services/coordinator/assign.ts';

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

test('second copies go to another worker of the same backend, the one that finishes soonest with what the round gave it', () => {
  const workers = [
    { id: 'a', samplesPerSecond: 1, backend: 'cpu' },
    { id: 'b', samplesPerSecond: 1, backend: 'cpu' },
    { id: 'c', samplesPerSecond: 1, backend: 'cpu' },
  ];
  const plan = assignChunks(chunks(4), workers);
  assert.deepEqual(indices(plan), [['a', [0, 1]], ['b', [2]], ['c', [3]]]);
  // every chunk twice: 8 chunks on 3 workers, at most 3 each, never a chunk twice on one worker
  const copies = assignCopies(chunks(4), plan, workers);
  assert.deepEqual(indices(copies), [['a', [2]], ['b', [0, 3]], ['c', [1]]]);
  for (const { workerId, chunks: mine } of copies) for (const c of mine) assert.notEqual(plan.find((p) => p.chunks.some((x) => x.index === c.index))!.workerId, workerId);
  // a faster worker takes more; a worker of another backend none; a chunk with no other worker of its backend is left out
  assert.deepEqual(indices(assignCopies([chunks(4)[3]], plan, [...workers.slice(0, 2).map((w) => ({ ...w, samplesPerSecond: w.id === 'a' ? 10 : 1 })), workers[2]])), [['a', [3]]]);
  assert.deepEqual(indices(assignCopies(chunks(4), plan, [workers[0], { ...workers[1], backend: 'gpu' }, { ...workers[2], backend: 'gpu' }])), [['b', [3]], ['c', [2]]]);
});
