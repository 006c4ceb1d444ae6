/**
 * No workers for a while: every worker is SIGKILLed mid-run; the
 * coordinator waits (--min-workers 2), says so on /metrics
 * (advclip_waiting_for_workers 1) and in its log, and goes on when new
 * workers join; the run ends with the adapter of `advclip train`.
 *
 * Bitwise: the adapter must equal advclip train's byte for byte. Measured
 * here (12 iterations): the reference's last step (lr 1e-6 at the end of the
 * cosine) moves the adapter by max |Δ| ≈ 1.0e-6, so a lost or doubled late
 * step would show; assertBitwiseWithReference asserts it is > 0.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { TINY } from './cluster-harness.ts';
import { assertBitwiseWithReference, killAll, scrape, startCoordinator, startWorker, trainReference, until } from './faults-harness.ts';

const tmp = mkdtempSync(join(tmpdir(), 'advclip-faults-noworkers-'));
after(() => {
  killAll();
  rmSync(tmp, { recursive: true, force: true });
});

const ARGS = [...TINY, '--iters', '12'];

test('all workers killed: the coordinator waits for --min-workers (metric and log), continues when workers return; result equal', async (t) => {
  const reference = trainReference(ARGS, join(tmp, 'train'));
  const coordinator = await startCoordinator([...ARGS, '--out', join(tmp, 'cluster'), '--min-workers', '2']);
  const waiting = () => scrape(coordinator.metricsUrl, 'advclip_waiting_for_workers');
  const backs = () => coordinator.log().match(/workers are back: 2 live; continuing/g)?.length ?? 0;
  const first = [startWorker(coordinator.address, 'a1'), startWorker(coordinator.address, 'a2')];
  await until(() => coordinator.steps() >= 3, 'three steps');
  for (const w of first) w.child.kill('SIGKILL');
  await Promise.all(first.map((w) => w.exited));
  const backsBefore = backs();
  await until(async () => (await waiting()) === 1, 'advclip_waiting_for_workers 1');
  const stepsWhileAlone = coordinator.steps();
  assert.match(coordinator.log(), /waiting for workers: [01] live, --min-workers 2/);

  const second = [startWorker(coordinator.address, 'b1'), startWorker(coordinator.address, 'b2')];
  await until(() => backs() > backsBefore, 'the workers to be back');
  // no step between the last "waiting for workers" and "workers are back" (log order, not a clock)
  const log = coordinator.log();
  const waitedAt = log.lastIndexOf('waiting for workers: ');
  const backAt = log.indexOf('workers are back: 2 live; continuing', waitedAt);
  assert.ok(waitedAt >= 0 && backAt > waitedAt, 'the wait is logged before the return');
  assert.doesNotMatch(log.slice(waitedAt, backAt), /"event":"step"/, 'no step without workers');
  assert.equal(await waiting(), 0, coordinator.log().split("\n").filter((l) => /waiting|back|lost|joined/.test(l)).join("\n"));
  assert.equal(await coordinator.exited, 0, coordinator.log().slice(-3000));
  await Promise.all(second.map((w) => w.exited));
  const ref = await reference;
  assert.equal(ref.code, 0, ref.stderr);
  const { summary } = await assertBitwiseWithReference(join(tmp, 'train'), join(tmp, 'cluster'));
  t.diagnostic(`faults: all workers gone injected 1 (2 workers SIGKILLed), survived 1 (waited, then resumed with 2 new workers at step ${stepsWhileAlone}); ${summary}`);
});
