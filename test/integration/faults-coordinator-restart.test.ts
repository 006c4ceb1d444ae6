/**
 * The coordinator SIGKILLed mid-run and started again with the same
 * --checkpoint-dir: it resumes from the newest valid checkpoint and ends
 * bit-identical to an uninterrupted run. Its second life is killed too, the
 * newest checkpoint is then corrupted (bytes flipped): the third life names
 * the corrupt file, resumes from the one before, replays the steps in
 * between deterministically and still ends bit-identical.
 *
 * Bitwise: the adapter must equal advclip train's byte for byte. Measured
 * here (24 iterations): the reference's last step (lr 1e-6 at the end of the
 * cosine) moves the adapter by max |Δ| ≈ 1.1e-6, so a lost or doubled late
 * step would show; assertBitwiseWithReference asserts it is > 0.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { checkpointFileName, listCheckpoints } from '../../services/io/checkpoint.ts';
import { TINY } from './cluster-harness.ts';
import { assertBitwiseWithReference, killAll, startCoordinator, Supervisor, trainReference, until, type CoordinatorProc } from './faults-harness.ts';

const tmp = mkdtempSync(join(tmpdir(), 'advclip-faults-coordinator-'));
after(() => {
  killAll();
  rmSync(tmp, { recursive: true, force: true });
});

const ARGS = [...TINY, '--iters', '24'];
const CKPT = join(tmp, 'ckpt');

/** One life of the coordinator with two workers; killed (SIGKILL) once it has done `killAfterSteps` steps, or run to the end. */
async function life(killAfterSteps: number | null): Promise<CoordinatorProc> {
  const coordinator = await startCoordinator([...ARGS, '--out', join(tmp, 'cluster'), '--checkpoint-dir', CKPT, '--checkpoint-every', '4']);
  const workers = new Supervisor(coordinator.address, 2);
  try {
    if (killAfterSteps === null) {
      assert.equal(await coordinator.exited, 0, coordinator.log().slice(-3000));
      return coordinator;
    }
    await until(() => coordinator.steps() >= killAfterSteps || !coordinator.alive, `${killAfterSteps} steps`);
    coordinator.child.kill('SIGKILL');
    await coordinator.exited;
    return coordinator;
  } finally {
    workers.stop();
    for (const w of workers.all) w.child.kill('SIGKILL');
  }
}

const resumedAt = (c: CoordinatorProc) => Number(/resuming from [^"]* at step (\d+)/.exec(c.log())?.[1] ?? NaN);

test('coordinator SIGKILLed twice and a corrupt newest checkpoint: resumes from the newest valid one, ends bit-identical to an uninterrupted run', async (t) => {
  const reference = trainReference(ARGS, join(tmp, 'train'));

  const first = await life(10);
  assert.match(first.log(), /no checkpoint in .*: starting at step 0/);
  assert.deepEqual((await listCheckpoints(CKPT)).map((c) => c.step), [8, 4], 'checkpoints every 4 steps');

  const second = await life(10);
  assert.equal(resumedAt(second), 8, 'the second life resumes from the newest checkpoint');
  const steps = (await listCheckpoints(CKPT)).map((c) => c.step);
  assert.deepEqual(steps.slice(0, 1), [16], 'it checkpointed on');
  assert.ok(steps.length <= 3, 'three kept');

  const newest = join(CKPT, checkpointFileName(16));
  const bytes = readFileSync(newest);
  for (const at of [bytes.length - 1, bytes.length - 999, Math.floor(bytes.length / 2)]) bytes[at] ^= 0x5a;
  writeFileSync(newest, bytes);

  const third = await life(null);
  assert.match(third.log(), new RegExp(`skipping corrupt checkpoint ${newest}: .*checksum mismatch`));
  assert.equal(resumedAt(third), 12, 'the corrupt newest is skipped for the one before');

  const ref = await reference;
  assert.equal(ref.code, 0, ref.stderr);
  const { summary } = await assertBitwiseWithReference(join(tmp, 'train'), join(tmp, 'cluster'));
  t.diagnostic(`faults: coordinator SIGKILL injected 2, survived 2 (resumed at steps 8 and 12); corrupt checkpoint injected 1, detected 1; ${summary}`);
  assert.equal(JSON.parse(readFileSync(join(tmp, 'cluster', 'train.json'), 'utf8')).iters, 24);
});
