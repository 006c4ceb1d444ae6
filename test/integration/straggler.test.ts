/**
 * Stragglers: one of three workers is slow in every task (its results come
 * 400 ms late, as a worker on a throttled machine). Its parts still out
 * well past the round's pace go to an idle worker too (--duplicate-factor),
 * the first good result counts, and since a chunk's result is the same bits
 * wherever it is computed, the adapter is bitwise `advclip train`'s. No
 * timing verdict here: docs/scaling.md has the measured step times.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import type { RoundTask } from '../../services/core/shard.ts';
import type { RunPreparer } from '../../services/worker/worker.ts';
import { runCluster, scratch, TINY, trainReference } from './cluster-harness.ts';
import { withCompute } from '../helpers/byzantine.ts';

const tmp = scratch();
after(() => tmp.done());

/** `honest`'s setup, its chunks recorded as computed by `who` (and `delayMs` late). */
function recorded(honest: RunPreparer, who: number, log: { who: number; step: number; round: number; chunk: number }[], delayMs = 0): RunPreparer {
  return withCompute(honest, async (original, ...args) => {
    const result = await original(...args);
    if (delayMs) await new Promise((r) => setTimeout(r, delayMs));
    const task: RoundTask = args[0];
    for (const c of task.chunks) log.push({ who, step: task.step, round: task.round, chunk: c.index });
    return result;
  });
}

test('a slow worker’s parts are duplicated on idle workers, and the adapter is bitwise the fault-free one', async () => {
  const args = [...TINY, '--iters', '4'];
  const reference = await trainReference(args, `${tmp.dir}/train`);
  const computed: { who: number; step: number; round: number; chunk: number }[] = [];
  const result = await runCluster(args, `${tmp.dir}/cluster`, { workers: 3, prepare: (i, honest) => recorded(honest, i, computed, i === 2 ? 400 : 0) });
  const key = (c: (typeof computed)[number]) => `${c.step}.${c.round}.${c.chunk}`;
  const bySlow = new Set(computed.filter((c) => c.who === 2).map(key));
  const twice = computed.filter((c) => c.who !== 2 && bySlow.has(key(c)));
  assert.ok(twice.length > 0, `no chunk of the slow worker was computed by another too: ${JSON.stringify(computed)}`);
  assert.ok(result.adapter.equals(reference), 'the adapter differs from advclip train’s');
});
