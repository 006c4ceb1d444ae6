/**
 * A worker that hangs (SIGSTOP) mid-run and comes back (SIGCONT): its
 * chunks go to the other worker after the task deadline, its late answers
 * are discarded as stale (advclip_rejected_results_total{reason="stale"} on
 * /metrics), and the run ends with the adapter of `advclip train`.
 *
 * Bitwise: the adapter must equal advclip train's byte for byte. Measured
 * here (48 iterations): the reference's last step (lr 1e-6 at the end of the
 * cosine) moves the adapter by max |Δ| ≈ 1.3e-6, so a lost or doubled late
 * step would show; assertBitwiseWithReference asserts it is > 0.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { TINY } from './cluster-harness.ts';
import { assertBitwiseWithReference, killAll, scrape, startCoordinator, startWorker, trainReference, until } from './faults-harness.ts';

const tmp = mkdtempSync(join(tmpdir(), 'advclip-faults-hang-'));
after(() => {
  killAll();
  rmSync(tmp, { recursive: true, force: true });
});

// long enough that both hangs start before the last step: tiny steps take ~0.1 s, and on a loaded
// machine the wait for each stale answer lets the run go on for many steps (16 iterations once ended first)
const ITERS = 48;
const ARGS = [...TINY, '--iters', String(ITERS)];
const HANGS = 2;

test(`a worker SIGSTOPped ${HANGS} times then SIGCONTed: deadline, reassignment, late answers discarded as stale; result equal`, async (t) => {
  const reference = trainReference(ARGS, join(tmp, 'train'));
  // heartbeats every 2 s: a stopped worker is dropped only after 8 s silent, so it comes back before that and answers late.
  // No duplicates of slow tasks (straggler.test.ts has them): the deadline's path is the one under test, and with
  // duplicates the run goes on without the stopped worker, past the adapter version of its late answer
  const coordinator = await startCoordinator([...ARGS, '--out', join(tmp, 'cluster'), '--task-deadline-ms', '1500', '--task-deadline-factor', '3', '--heartbeat-ms', '2000', '--duplicate-factor', '0']);
  const steady = startWorker(coordinator.address, 'steady');
  const hanging = startWorker(coordinator.address, 'hanging');
  const count = (pattern: RegExp) => coordinator.log().match(pattern)?.length ?? 0;
  let hangs = 0;
  for (; hangs < HANGS; hangs++) {
    const at = coordinator.steps() + 2;
    assert.ok(at < ITERS - 2, `the run is nearly over (step ${at} of ${ITERS}) before hang ${hangs + 1}: raise ITERS`);
    await until(() => coordinator.steps() >= at, `step ${at}`);
    const deadlines = count(/did not deliver \(deadline\)/g);
    hanging.child.kill('SIGSTOP');
    await until(() => count(/did not deliver \(deadline\)/g) > deadlines, () => `a missed deadline; coordinator:\n${coordinator.log().slice(-4000)}\nworker:\n${hanging.log().slice(-1500)}`);
    hanging.child.kill('SIGCONT');
    await until(async () => (await scrape(coordinator.metricsUrl, 'advclip_rejected_results_total', { reason: 'stale' })) > hangs, 'a stale answer');
  }
  const stale = await scrape(coordinator.metricsUrl, 'advclip_rejected_results_total', { reason: 'stale' });
  assert.equal(await coordinator.exited, 0, coordinator.log().slice(-3000));
  assert.equal(await steady.exited, 0);
  assert.equal(await hanging.exited, 0, 'the worker that hung drains and exits normally');
  assert.equal(count(/ lost: (?!the worker closed its stream)/g), 0, 'no worker was dropped before the end: the hung one was late, not gone');
  const ref = await reference;
  assert.equal(ref.code, 0, ref.stderr);
  const { summary } = await assertBitwiseWithReference(join(tmp, 'train'), join(tmp, 'cluster'));
  t.diagnostic(`faults: worker SIGSTOP/SIGCONT injected ${hangs}, survived ${hangs}; deadlines missed ${count(/did not deliver \(deadline\)/g)}, stale answers discarded ${stale}; ${summary}`);
  assert.ok(stale >= HANGS);
});
