/**
 * A worker whose event loop blocks for longer than the gRPC keepalive time
 * in every task (as tfjs wasm does for a whole task on a big model): pings
 * go unanswered while it computes, yet the stream stays up — the
 * coordinator does not ping, the worker's ping timeout outlasts the block —
 * and no task is lost or reassigned.
 *
 * Bitwise: the adapter must equal advclip train's byte for byte. Measured
 * here (2 iterations): the reference's last step (lr 1e-6 at the end of the
 * cosine) moves the adapter by max |Δ| ≈ 1.0e-6, so a lost or doubled late
 * step would show; assertBitwiseWithReference asserts it is > 0.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { TINY } from './cluster-harness.ts';
import { assertBitwiseWithReference, killAll, startCoordinator, startWorker, trainReference } from './faults-harness.ts';

const tmp = mkdtempSync(join(tmpdir(), 'advclip-faults-keepalive-'));
after(() => {
  killAll();
  rmSync(tmp, { recursive: true, force: true });
});

const ARGS = [...TINY, '--iters', '2'];
const KEEPALIVE_MS = 200;
const BLOCK_MS = 1_500;

test(`tasks that block the worker's event loop ${BLOCK_MS} ms with a ${KEEPALIVE_MS} ms keepalive: the stream survives, nothing is reassigned`, async (t) => {
  const reference = trainReference(ARGS, join(tmp, 'train'));
  const coordinator = await startCoordinator([...ARGS, '--out', join(tmp, 'cluster'), '--heartbeat-ms', '250']);
  const worker = startWorker(coordinator.address, 'blocking', ['--grpc-keepalive-ms', String(KEEPALIVE_MS)], { ADVCLIP_TEST_TASK_BLOCK_MS: String(BLOCK_MS) });
  assert.equal(await coordinator.exited, 0, `the run; coordinator:\n${coordinator.log().slice(-2000)}\nworker:\n${worker.log().slice(-2000)}`);
  assert.equal(await worker.exited, 0, worker.log().slice(-3000));
  const log = coordinator.log();
  assert.doesNotMatch(log, /did not deliver/, 'no task was reassigned');
  assert.doesNotMatch(log, / lost: (?!the worker closed its stream)/, 'the worker was not dropped');
  const tasks = 2 * 4; // τ 2 δ rounds, the LoRA round and the text round per step
  const ref = await reference;
  assert.equal(ref.code, 0, ref.stderr);
  const { summary } = await assertBitwiseWithReference(join(tmp, 'train'), join(tmp, 'cluster'));
  t.diagnostic(`faults: ${tasks} tasks blocking the event loop ${BLOCK_MS} ms (> keepalive ${KEEPALIVE_MS} ms, > 4 × heartbeat 250 ms) survived ${tasks}; ${summary}`);
});
