/**
 * Workers SIGKILLed mid-round, ten times in one run: a supervisor starts a
 * new worker for each one killed; the lost worker's chunks go to the others
 * and the run ends with the adapter of a fault-free `advclip train` of the
 * same seed.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { runCli } from '../helpers/cli.ts';
import { TINY } from './cluster-harness.ts';
import { compareAdapters, killAll, sleep, startCoordinator, Supervisor, until } from './faults-harness.ts';

const tmp = mkdtempSync(join(tmpdir(), 'advclip-faults-kill-'));
after(() => {
  killAll();
  rmSync(tmp, { recursive: true, force: true });
});

const KILLS = 10;
const ARGS = [...TINY, '--iters', '40'];

test(`a worker SIGKILLed mid-round ${KILLS} times: training completes with the adapter of advclip train`, async (t) => {
  const reference = runCli(['train', ...ARGS, '--out', join(tmp, 'train')]);
  const coordinator = await startCoordinator([...ARGS, '--out', join(tmp, 'cluster'), '--min-workers', '1']);
  const workers = new Supervisor(coordinator.address, 2);
  let kills = 0;
  let killedMidRound = 0;
  for (; kills < KILLS; kills++) {
    // a worker that has computed, while the run is in a round: every round gives each live worker chunks
    await until(() => workers.ready.length >= 2 || coordinator.steps() > 0, 120_000, 'two ready workers');
    const before = coordinator.steps();
    await until(() => coordinator.steps() > before, 60_000, 'a step since the last kill');
    const victim = workers.ready[0];
    assert.ok(victim, 'a ready worker to kill');
    const count = (pattern: RegExp) => coordinator.log().match(pattern)?.length ?? 0;
    const lostBefore = count(/did not deliver \(worker_lost\)/g);
    const gone = count(/ lost: /g);
    await sleep(50 + 37 * kills); // a different point of the round each time
    victim.child.kill('SIGKILL');
    await victim.exited;
    await until(() => count(/ lost: /g) > gone, 10_000, 'the coordinator noticed the loss');
    await sleep(100);
    if (count(/did not deliver \(worker_lost\)/g) > lostBefore) killedMidRound++;
  }
  workers.stop();
  const code = await coordinator.exited;
  assert.equal(code, 0, coordinator.log().slice(-3000));
  assert.equal((await reference).code, 0);
  const { maxAbsDiff, bitwise } = compareAdapters(join(tmp, 'train'), join(tmp, 'cluster'));
  const reassigned = coordinator.log().match(/did not deliver \(worker_lost\); reassigning/g)?.length ?? 0;
  t.diagnostic(`faults: worker SIGKILL injected ${kills}, survived ${kills} (${killedMidRound} with a task in flight; ${reassigned} chunk sets reassigned); workers started ${workers.all.length}; max |Δ| vs advclip train ${maxAbsDiff}${bitwise ? ' (bitwise equal)' : ''}`);
  assert.equal(kills, KILLS);
  assert.ok(killedMidRound >= KILLS / 2, `most kills hit a worker with a task in flight (${killedMidRound} of ${KILLS})`);
  assert.ok(maxAbsDiff <= 1e-5, `max |Δ| ${maxAbsDiff}`);
});
