/**
 * Workers SIGKILLed mid-round, ten times in one run: a supervisor starts a
 * new worker for each one killed; the lost worker's chunks go to the other
 * and the run ends bitwise with the adapter of a fault-free `advclip train`
 * of the same seed.
 *
 * Mid-round without a clock: the victim (the worker with the larger share of
 * the work) is SIGSTOPped first, then killed once the coordinator has sent
 * tasks since the stop: a round began that it cannot answer, and rounds
 * give each live worker chunks in proportion to its measured speed.
 *
 * Measured here (40 iterations): the reference's last step moves the adapter
 * by max |Δ| ≈ 1.2e-6 (lr 1e-6 at the end of the cosine), and the adapter is
 * bitwise equal.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { TINY } from './cluster-harness.ts';
import { assertBitwiseWithReference, killAll, scrape, startCoordinator, Supervisor, trainReference, until, type WorkerProc } from './faults-harness.ts';

const tmp = mkdtempSync(join(tmpdir(), 'advclip-faults-kill-'));
after(() => {
  killAll();
  rmSync(tmp, { recursive: true, force: true });
});

const KILLS = 10;
/** The id the coordinator gave a worker (`wN-NAME-random`), from the worker's log. */
const workerIdOf = (w: WorkerProc) => /registered with \S+ as (\S+?)"/.exec(w.log())?.[1] ?? '';
const ARGS = [...TINY, '--iters', '40'];

test(`a worker SIGKILLed mid-round ${KILLS} times: training completes bitwise with the adapter of advclip train`, async (t) => {
  const reference = trainReference(ARGS, join(tmp, 'train'));
  // --min-workers 2: the run waits for each replacement, so it cannot end before the ten kills however slowly workers start
  const coordinator = await startCoordinator([...ARGS, '--out', join(tmp, 'cluster'), '--min-workers', '2']);
  const workers = new Supervisor(coordinator.address, 2);
  const count = (pattern: RegExp) => coordinator.log().match(pattern)?.length ?? 0;
  const tasksSent = () => scrape(coordinator.metricsUrl, 'advclip_network_bytes_total', { direction: 'sent', message: 'task' });
  const samplesOf = (w: WorkerProc) => scrape(coordinator.metricsUrl, 'advclip_worker_samples_total', { worker: workerIdOf(w) });
  let kills = 0;
  let killedMidRound = 0;
  for (; kills < KILLS; kills++) {
    await until(() => workers.ready.length >= 2 || !coordinator.alive, 'two ready workers');
    assert.ok(coordinator.alive, `the run ended after ${kills} kills: ${coordinator.log().slice(-2000)}`);
    const before = coordinator.steps();
    await until(() => coordinator.steps() > before, 'a step since the last kill');
    // the victim: the worker with the larger share of the work, so the rounds after its stop give it chunks
    const ready = workers.ready;
    const shares = await Promise.all(ready.map(samplesOf));
    const victim = ready[shares.indexOf(Math.max(...shares))];
    assert.ok(victim, 'a ready worker to kill');
    const lostBefore = count(/did not deliver \(worker_lost\)/g);
    const gone = count(/ lost: /g);
    victim.child.kill('SIGSTOP');
    const sentAtStop = await tasksSent();
    await until(async () => (await tasksSent()) > sentAtStop, 'tasks sent after the victim stopped');
    victim.child.kill('SIGKILL');
    await victim.exited;
    await until(() => count(/ lost: /g) > gone, 'the coordinator noticed the loss');
    // a reassignment of the victim's chunks is logged before the round, hence the step, can end
    const stepAtKill = coordinator.steps();
    await until(() => coordinator.steps() > stepAtKill || !coordinator.alive, 'a step after the kill');
    if (count(/did not deliver \(worker_lost\)/g) > lostBefore) killedMidRound++;
  }
  workers.stop();
  const code = await coordinator.exited;
  assert.equal(code, 0, coordinator.log().slice(-3000));
  const ref = await reference;
  assert.equal(ref.code, 0, ref.stderr);
  const reassigned = count(/did not deliver \(worker_lost\); reassigning/g);
  const { summary } = await assertBitwiseWithReference(join(tmp, 'train'), join(tmp, 'cluster'));
  t.diagnostic(`faults: worker SIGKILL injected ${kills}, survived ${kills}, ${killedMidRound} with a task in flight (${reassigned} chunk sets reassigned); workers started ${workers.all.length}; ${summary}`);
  assert.equal(kills, KILLS);
  assert.ok(killedMidRound > 0, 'a kill reached a worker holding chunks');
});
