/** How `advclip cluster --workers N` and `bench step --workers N` lay N workers onto this machine's cores. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { workerProcesses } from '../../../services/run/local-cluster.ts';

test('one process per worker while the workers fit the cores', () => {
  assert.deepEqual(workerProcesses(1, 2), [1]);
  assert.deepEqual(workerProcesses(2, 2), [1, 1]);
  assert.deepEqual(workerProcesses(3, 8), [1, 1, 1]);
});

test('beyond the cores, one process per core with the workers spread evenly as replicas', () => {
  assert.deepEqual(workerProcesses(64, 2), [32, 32]);
  assert.deepEqual(workerProcesses(5, 2), [3, 2]);
  assert.deepEqual(workerProcesses(7, 1), [7]);
  for (const [n, cores] of [[64, 3], [100, 7], [9, 4]]) {
    const plan = workerProcesses(n, cores);
    assert.equal(plan.length, cores);
    assert.equal(plan.reduce((a, b) => a + b, 0), n);
    assert.ok(Math.max(...plan) - Math.min(...plan) <= 1);
  }
});

test('a machine that reports no cores still gets one process', () => {
  assert.deepEqual(workerProcesses(4, 0), [4]);
});
