/**
 * NATS restarted mid-run (same port, same JetStream store): a stale
 * `adapter.latest` left by an earlier run is cleared at coordinator start;
 * while NATS is down training goes on over gRPC without the 5 s waits of a
 * publish or a NATS fetch; the JetStream data written before the stop is
 * there after it; the workers catch up on the newest version through NATS
 * when it is back; the run ends with the adapter of `advclip train`.
 *
 * Bitwise: the adapter must equal advclip train's byte for byte. Measured
 * here (24 iterations): the reference's last step (lr 1e-6 at the end of the
 * cosine) moves the adapter by max |Δ| ≈ 1.1e-6, so a lost or doubled late
 * step would show; assertBitwiseWithReference asserts it is > 0.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { AdapterPublisher, AdapterSubscriber, type AdapterPointer } from '../../services/protocol/adapter-store.ts';
import { connectNats, isNatsUnavailable, type NatsLink } from '../../services/protocol/nats-connection.ts';
import { startNatsServer, type NatsServer } from '../../services/protocol/nats-server.ts';
import { TINY } from './cluster-harness.ts';
import { assertBitwiseWithReference, killAll, scrape, startCoordinator, startWorker, trainReference, until, type WorkerProc } from './faults-harness.ts';

const tmp = mkdtempSync(join(tmpdir(), 'advclip-faults-nats-'));
let nats: NatsServer;
const links: NatsLink[] = [];

before(async () => {
  nats = await startNatsServer();
});

after(async () => {
  killAll();
  for (const l of links) await l.close().catch(() => undefined);
  await nats?.close();
  rmSync(tmp, { recursive: true, force: true });
});

async function link(name: string): Promise<NatsLink> {
  const l = await connectNats({ servers: nats.url, name });
  if (isNatsUnavailable(l)) throw l.error;
  links.push(l);
  return l;
}

const ARGS = [...TINY, '--iters', '24'];
const metricsPort = async (w: WorkerProc) => Number((await w.waitFor(/"msg":"ready".*?"metrics":(\d+)/))[1]);

test('NATS restarted mid-run: gRPC fallback without waits, JetStream data survives, workers catch up through NATS, result equal', async (t) => {
  const reference = trainReference(ARGS, join(tmp, 'train'));

  // an earlier run left adapter.latest at version 99
  const earlier = await AdapterPublisher.open(await link('earlier-run'));
  await earlier.publish(99, new TextEncoder().encode('not this run’s adapter'));

  const coordinator = await startCoordinator([...ARGS, '--out', join(tmp, 'cluster'), '--nats', nats.url, '--task-deadline-ms', '20000']);
  assert.match(coordinator.log(), /cleared adapter.latest and the adapter blobs of any earlier run/);
  const observerLink = await link('observer');
  const observer = await AdapterSubscriber.open(observerLink);
  const seen: number[] = [];
  observer.onVersion((a) => seen.push(a.version));
  const workers = [startWorker(coordinator.address, 'n1'), startWorker(coordinator.address, 'n2')];
  const ports = await Promise.all(workers.map(metricsPort));

  await until(() => coordinator.steps() >= 4, 'four steps');
  assert.ok(seen.length > 0 && seen.every((v) => v < 99), `versions of this run on NATS, not the earlier 99 (${seen.join(',')})`);
  await until(() => observer.latest() !== undefined, 'a held version');
  const beforeStop: AdapterPointer = { ...observer.latest()! };

  await nats.stop();
  await until(() => /NATS connection lost/.test(coordinator.log()), 'the coordinator to notice NATS is down');
  const downAt = coordinator.steps();
  await until(() => coordinator.steps() >= downAt + 3, 'three steps without NATS');
  // no 5 s wait ran out while NATS was down: no publish timed out (versions are announced as
  // not on NATS: "NATS is down"), and no worker waited for a version on NATS
  assert.match(coordinator.log(), /NATS is down: adapter versions from \d+ go over gRPC until it is back/);
  assert.doesNotMatch(coordinator.log(), /cannot publish adapter versions to NATS[^\n]*time ?out/i, 'no publish waited for its timeout while NATS was down');
  for (const w of workers) assert.doesNotMatch(w.log(), /not received within|time ?out/i, `no NATS wait ran out on ${w.name}: ${w.log().slice(-1500)}`);

  await nats.restart();
  // the blob published before the stop is still in the object store, with its hash
  const survived = await observer.fetch(beforeStop.version, beforeStop.sha256);
  assert.equal(survived.sha256, beforeStop.sha256);
  await until(() => /NATS publishing works again/.test(coordinator.log()), 'publishing again');
  const seenBefore = seen.length;
  await until(() => seen.length > seenBefore, 'a version published after the restart');
  const afterRestart = seen.at(-1)!;
  // every worker holds a version published after the restart (the metric of its adapter holder)
  await until(
    async () => (await Promise.all(ports.map((p) => scrape(`http://127.0.0.1:${p}/metrics`, 'advclip_worker_adapter_version')))).every((v) => v >= afterRestart),
    `workers at version ${afterRestart}`,
  );
  const caughtUp = workers.filter((w) => /NATS reconnected; catching up on adapter.latest/.test(w.log())).length;

  assert.equal(await coordinator.exited, 0, coordinator.log().slice(-3000));
  await Promise.all(workers.map((w) => w.exited));
  await until(() => seen.at(-1) === 24, 'the final version on NATS');
  const ref = await reference;
  assert.equal(ref.code, 0, ref.stderr);
  const { summary } = await assertBitwiseWithReference(join(tmp, 'train'), join(tmp, 'cluster'));
  t.diagnostic(
    `faults: NATS restart injected 1, survived 1 (3 steps while down without a publish or fetch timeout; blob of version ${beforeStop.version} survived; ${caughtUp}/2 workers re-read adapter.latest on reconnect; both at ≥ v${afterRestart}); stale adapter.latest of an earlier run injected 1, cleared 1; ${summary}`,
  );
  await observer.close();
});
