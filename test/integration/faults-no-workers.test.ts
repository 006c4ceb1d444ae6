/**
 * No workers for a while: every worker is SIGKILLed mid-run; the
 * coordinator waits (--min-workers 2), says so on /metrics
 * (advclip_waiting_for_workers 1) and in its log, and goes on when new
 * workers join; the run ends with the adapter of `advclip train`.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { runCli } from '../helpers/cli.ts';
import { TINY } from './cluster-harness.ts';
import { compareAdapters, killAll, scrape, sleep, startCoordinator, startWorker, until } from './faults-harness.ts';

const tmp = mkdtempSync(join(tmpdir(), 'advclip-faults-noworkers-'));
after(() => {
  killAll();
  rmSync(tmp, { recursive: true, force: true });
});

const ARGS = [...TINY, '--iters', '12'];

test('all workers killed: the coordinator waits for --min-workers (metric and log), continues when workers return; result equal', async (t) => {
  const reference = runCli(['train', ...ARGS, '--out', join(tmp, 'train')]);
  const coordinator = await startCoordinator([...ARGS, '--out', join(tmp, 'cluster'), '--min-workers', '2']);
  const waiting = () => scrape(coordinator.metricsUrl, 'advclip_waiting_for_workers');
  const backs = () => coordinator.log().match(/workers are back: 2 live; continuing/g)?.length ?? 0;
  const first = [startWorker(coordinator.address, 'a1'), startWorker(coordinator.address, 'a2')];
  await until(() => coordinator.steps() >= 3, 120_000, 'three steps');
  for (const w of first) w.child.kill('SIGKILL');
  await Promise.all(first.map((w) => w.exited));
  const backsBefore = backs();
  await until(async () => (await waiting()) === 1, 15_000, 'advclip_waiting_for_workers 1');
  const stepsWhileAlone = coordinator.steps();
  await sleep(2_000);
  assert.equal(coordinator.steps(), stepsWhileAlone, 'no step without workers');
  assert.equal(await waiting(), 1);
  assert.match(coordinator.log(), /waiting for workers: [01] live, --min-workers 2/);

  const second = [startWorker(coordinator.address, 'b1'), startWorker(coordinator.address, 'b2')];
  await until(() => backs() > backsBefore, 120_000, 'the workers to be back');
  assert.equal(await waiting(), 0, coordinator.log().split("\n").filter((l) => /waiting|back|lost|joined/.test(l)).join("\n"));
  assert.equal(await coordinator.exited, 0, coordinator.log().slice(-3000));
  await Promise.all(second.map((w) => w.exited));
  assert.equal((await reference).code, 0);
  const { maxAbsDiff, bitwise } = compareAdapters(join(tmp, 'train'), join(tmp, 'cluster'));
  t.diagnostic(`faults: all workers gone injected 1 (2 workers SIGKILLed), survived 1 (waited, then resumed with 2 new workers at step ${stepsWhileAlone}); max |Δ| vs advclip train ${maxAbsDiff}${bitwise ? ' (bitwise equal)' : ''}`);
  assert.ok(maxAbsDiff <= 1e-5, `max |Δ| ${maxAbsDiff}`);
});
