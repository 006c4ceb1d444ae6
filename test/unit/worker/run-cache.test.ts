/**
 * A sweep's worker holds at most maxRuns runs: each loaded once on its
 * first use, the least recently used released beyond the bound, a failed
 * load forgotten so the next task tries again.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RunCache } from '../../../services/worker/run-cache.ts';

test('runs load once, the least recently used beyond the bound is released, a failed load is retried', async () => {
  const loads: string[] = [];
  const released: string[] = [];
  let failNext = false;
  const cache = new RunCache<string>(
    async (id) => {
      loads.push(id);
      if (failNext) {
        failNext = false;
        throw new Error('GetRun failed');
      }
      return id;
    },
    (id) => void released.push(id),
    2,
  );
  assert.equal(await cache.get('a'), 'a');
  assert.equal(await cache.get('b'), 'b');
  assert.equal(await cache.get('a'), 'a'); // held: not loaded again, and now the most recent
  assert.deepEqual(loads, ['a', 'b']);
  await cache.get('c');
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(released, ['b']);
  assert.deepEqual(cache.held, ['a', 'c']);
  assert.equal(cache.peek('b'), undefined);
  failNext = true;
  await assert.rejects(cache.get('d'), /GetRun failed/);
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(await cache.get('d'), 'd');
  assert.equal(loads.filter((id) => id === 'd').length, 2);
  cache.dispose();
  await new Promise((r) => setImmediate(r));
  assert.equal(cache.held.length, 0);
  assert.ok(released.includes('d'));
});
