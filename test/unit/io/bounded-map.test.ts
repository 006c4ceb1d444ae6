import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { AdvclipError } from '../../../services/core/errors.ts';
import { mapBounded } from '../../../services/io/bounded-map.ts';

test('keeps input order and never runs more than `concurrency` calls at once', async () => {
  let running = 0;
  let peak = 0;
  const delays = [5, 1, 4, 2, 3, 1, 0, 2];
  const out = await mapBounded(delays, 2, async (ms, i) => {
    running++;
    peak = Math.max(peak, running);
    await sleep(ms);
    running--;
    return i * 10;
  });
  assert.deepEqual(out, [0, 10, 20, 30, 40, 50, 60, 70]);
  assert.equal(peak, 2);
});

test('after the first failure no new calls start, and that failure is the rejection', async () => {
  const started: number[] = [];
  await assert.rejects(
    mapBounded([0, 1, 2, 3, 4, 5], 2, async (i) => {
      started.push(i);
      await sleep(1);
      if (i === 1) throw new Error('item 1 is bad');
      return i;
    }),
    /item 1 is bad/,
  );
  assert.ok(started.length <= 3, `started ${started.join(',')}`);
});

test('a concurrency below 1 is INVALID_ARGUMENT', async () => {
  await assert.rejects(mapBounded([1], 0, async (x) => x), (e: unknown) => e instanceof AdvclipError && e.code === 'INVALID_ARGUMENT');
});
