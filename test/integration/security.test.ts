/**
 * Security of a cluster on loopback: NATS users (a worker may read adapter
 * versions, not publish them), admission (a worker with a certificate of
 * another CA or a wrong cluster token gets no work; the run completes with
 * the admitted worker and the adapter of `advclip train`), no secret in
 * /metrics, /healthz, /readyz, logs or command lines, and loopback as the
 * default address of every listener.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { Objm } from '@nats-io/obj';
import { parseFlags } from '../../services/cli/args.ts';
import { clusterCommand } from '../../services/cli/cluster.ts';
import { coordinatorCommand, coordinatorRunFrom } from '../../services/cli/coordinator.ts';
import { serveTraining } from '../../services/run/serve.ts';
import { RUN_SPEC_VERSION } from '../../services/run/spec.ts';
import { createLogger } from '../../services/protocol/log.ts';
import { workerCommand } from '../../services/cli/worker.ts';
import { workerSetupFrom } from '../../services/run/worker-setup.ts';
import { initBackend } from '../../services/core/backend.ts';
import { AdvclipError } from '../../services/core/errors.ts';
import { parseLatest } from '../../services/protocol/adapter-latest.ts';
import { AdapterPublisher, AdapterSubscriber } from '../../services/protocol/adapter-store.ts';
import { connectNats, isNatsUnavailable, type NatsLink } from '../../services/protocol/nats-connection.ts';
import { findNatsServerBinary, NATS_WORKER_PERMISSIONS, startNatsServer, type NatsUser } from '../../services/protocol/nats-server.ts';
import { grpcChannelOptions } from '../../services/protocol/grpc-options.ts';
import { coordinatorClient } from '../../services/protocol/proto-loader.ts';
import { channelCredentials, makeThrowawayCerts, type TransportSecurity } from '../../services/protocol/tls.ts';
import { Worker } from '../../services/worker/worker.ts';
import { BIN, REPO } from '../helpers/cli.ts';
import { requires } from '../helpers/requires.ts';
import { adapterBytes, quiet, scratch, TINY, trainReference } from './cluster-harness.ts';

const natsMissing = requires('nats-server', (() => {
  try {
    findNatsServerBinary();
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
})(), 'apt-get install nats-server');

const secret = () => randomBytes(18).toString('base64url');
const users = () => ({ coordinator: { user: 'coordinator', password: secret() }, worker: { user: 'worker', password: secret() } });

async function link(url: string, u: NatsUser): Promise<NatsLink> {
  const l = await connectNats({ servers: url, user: u.user, password: u.password, connectTimeoutMs: 3_000 });
  if (isNatsUnavailable(l)) throw l.error;
  return l;
}

describe('NATS users of a loopback nats-server', { skip: natsMissing }, () => {
  test('a worker user reads adapter versions and publishes events, but cannot publish an adapter version or touch the streams', async () => {
    const u = users();
    const nats = await startNatsServer({ users: [u.coordinator, { ...u.worker, permissions: NATS_WORKER_PERMISSIONS }] });
    const links: NatsLink[] = [];
    try {
      const coordinator = await link(nats.url, u.coordinator);
      links.push(coordinator);
      const publisher = await AdapterPublisher.open(coordinator);
      const v1 = await publisher.publish(1, new Uint8Array([1, 2, 3]));

      const worker = await link(nats.url, u.worker);
      links.push(worker);
      const subscriberLog: string[] = [];
      let logged: () => void = () => undefined;
      const subscriber = await AdapterSubscriber.open(worker, { log: (m) => (subscriberLog.push(m), logged()) });
      const held = await subscriber.waitForVersion(1, 5_000);
      assert.deepEqual([...held.bytes], [1, 2, 3], 'the worker reads the version');

      const refused = (e: unknown) => /permission/i.test(String((e as Error).message) + String((e as Error).cause ?? ''));
      const kv = await new Kvm(worker.nc).open(worker.subjects.adapterKvBucket);
      await assert.rejects(kv.put(worker.subjects.latestAdapterKey, JSON.stringify({ ...v1, version: 666 })), refused);
      const objects = await new Objm(worker.nc).open(worker.subjects.adapterObjectBucket);
      await assert.rejects(objects.putBlob({ name: worker.subjects.adapterObject(666) }, new Uint8Array([6])), refused);
      const impostor = await AdapterPublisher.open(worker);
      await assert.rejects(impostor.publish(666, new Uint8Array([6, 6, 6])), (e: unknown) => e instanceof AdvclipError && refused(e));
      const jsm = await jetstreamManager(worker.nc);
      await assert.rejects(jsm.streams.purge(`KV_${worker.subjects.adapterKvBucket}`), refused);
      await assert.rejects(jsm.streams.delete(`OBJ_${worker.subjects.adapterObjectBucket}`), refused);

      const events = coordinator.nc.subscribe(coordinator.subjects.allEvents, { max: 1 });
      await coordinator.nc.flush();
      worker.nc.publish(worker.subjects.event('step'), JSON.stringify({ step: 1 }));
      for await (const m of events) assert.deepEqual(m.json(), { step: 1 }, 'a worker may publish events');

      const latest = await (await new Kvm(coordinator.nc).open(coordinator.subjects.adapterKvBucket)).get(coordinator.subjects.latestAdapterKey);
      const { version, sha256 } = parseLatest(latest!.value);
      assert.deepEqual({ version, sha256, carried: 'inline' }, v1, 'adapter.latest still holds version 1');
      assert.equal(subscriber.latest()?.version, 1);

      // a corrupt pointer (only the coordinator could write one) is refused and the held version kept
      const coordinatorKv = await new Kvm(coordinator.nc).open(coordinator.subjects.adapterKvBucket);
      await coordinatorKv.put(coordinator.subjects.latestAdapterKey, 'not json');
      await coordinatorKv.put(coordinator.subjects.latestAdapterKey, JSON.stringify({ version: 2, sha256: 'nope', object: '' }));
      // the subscriber logs each pointer it refuses: wait for both lines
      await new Promise<void>((resolve) => {
        logged = () => void (subscriberLog.length >= 2 && resolve());
        logged();
      });
      assert.match(subscriberLog[0] ?? '', /adapter\.latest is not JSON: not json/);
      assert.match(subscriberLog[1] ?? '', /adapter\.latest is not \{version, sha256, object\}/);
      assert.equal(subscriber.latest()?.version, 1);
      await subscriber.close();
      const fresh = await AdapterSubscriber.open(worker);
      assert.deepEqual([...(await fresh.fetch(1, v1.sha256)).bytes], [1, 2, 3], 'a worker reads a version by number from the history of adapter.latest');
      await fresh.close();

      const wrong = await connectNats({ servers: nats.url, user: u.worker.user, password: 'wrong', connectTimeoutMs: 3_000 });
      assert.ok(isNatsUnavailable(wrong) && wrong.error.code === 'FAILED_PRECONDITION', 'a wrong password is refused');
      const anonymous = await connectNats({ servers: nats.url, connectTimeoutMs: 3_000 });
      assert.ok(isNatsUnavailable(anonymous) && anonymous.error.code === 'FAILED_PRECONDITION', 'no credentials are refused');
    } finally {
      for (const l of links) await l.close();
      await nats.close();
    }
  });

  test('NATS_WORKER_PERMISSIONS are the worker permissions of deploy/nats/nats.conf', () => {
    const conf = readFileSync(join(REPO, 'deploy/nats/nats.conf'), 'utf8');
    const worker = conf.slice(conf.indexOf('$NATS_WORKER_USER'));
    const list = (pattern: RegExp) => [...(pattern.exec(worker)?.[1] ?? '').matchAll(/"([^"]+)"/g)].map((m) => m[1]);
    assert.deepEqual(list(/publish\s*\{\s*allow:\s*\[([^\]]*)\]/), NATS_WORKER_PERMISSIONS.publish?.allow);
    assert.deepEqual(list(/publish\s*\{[^}]*?deny:\s*\[([^\]]*)\]/), NATS_WORKER_PERMISSIONS.publish?.deny);
    assert.deepEqual(list(/subscribe\s*\{\s*allow:\s*\[([^\]]*)\]/), NATS_WORKER_PERMISSIONS.subscribe?.allow);
  });
});

function capturingLogger() {
  const lines: string[] = [];
  return { lines, log: createLogger({ json: true, write: (l) => lines.push(l) }) };
}

const scrape = async (port: number) =>
  (await Promise.all(['/metrics', '/healthz', '/readyz'].map(async (path) => `${path}\n${await (await fetch(`http://127.0.0.1:${port}${path}`)).text()}`))).join('\n');

// no NATS here: admission is gRPC's and the coordinator's alone (the NATS users are tested above)
describe('admission over mTLS with a cluster token', () => {
  test('workers with a foreign certificate, no certificate or a wrong token get no work; the token appears in no endpoint or log; the run equals advclip train', async () => {
    const tmp = scratch();
    const token = secret();
    const coordinatorLog = capturingLogger();
    const workerLog = capturingLogger();
    let good: Worker | undefined;
    try {
      const reference = await trainReference(TINY, join(tmp.dir, 'train'));
      const [certs, foreign] = await Promise.all([makeThrowawayCerts(join(tmp.dir, 'certs')), makeThrowawayCerts(join(tmp.dir, 'foreign'))]);
      const tls = ['--tls-ca', certs.server.caPath, '--tls-cert', certs.server.certPath, '--tls-key', certs.server.keyPath];
      const flags = coordinatorRunFrom(parseFlags(coordinatorCommand, [...TINY, ...tls, '--cluster-token', token, '--out', join(tmp.dir, 'cluster'), '--listen', '127.0.0.1:0', '--metrics-port', '0']));
      const backend = await initBackend();
      let address = '';
      const startWorker = (name: string, security: TransportSecurity, clusterToken: string | undefined, log = quiet) =>
        Worker.start({
          coordinator: address,
          security,
          clusterToken,
          name,
          capabilities: { backend: backend.name, device: 'cpu', cores: 1, modelSha256: '', version: 'test' },
          prepare: workerSetupFrom({}, backend, quiet),
          metrics: { port: 0 },
          connectTimeoutMs: 1_500,
          log,
        });
      const refusals: Record<string, AdvclipError> = {};
      const scraped: string[] = [];
      let runConfigJson = '';
      const summary = await serveTraining(flags, coordinatorLog.log, {
        onListening: async (c) => {
          address = c.address;
          const attempts: [string, TransportSecurity, string | undefined][] = [
            ['foreign-certificate', { mode: 'mtls', caPath: certs.caCertPath, certPath: foreign.client.certPath, keyPath: foreign.client.keyPath }, token],
            ['plaintext', { mode: 'insecure' }, token],
            ['wrong-token', { mode: 'mtls', ...certs.client }, 'not-the-token'],
            ['no-token', { mode: 'mtls', ...certs.client }, undefined],
          ];
          for (const [name, security, clusterToken] of attempts) {
            await startWorker(name, security, clusterToken).then(
              (w) => assert.fail(`${name} was admitted as ${w.id}`),
              (e: AdvclipError) => (refusals[name] = e),
            );
          }
          good = await startWorker('good', { mode: 'mtls', ...certs.client }, token, workerLog.log);
          const client = coordinatorClient(address, channelCredentials({ mode: 'mtls', ...certs.client }, () => undefined), grpcChannelOptions());
          runConfigJson = await new Promise<string>((resolve, reject) =>
            client.Register({ capabilities: { worker_name: 'peek', run_spec_version: RUN_SPEC_VERSION }, cluster_token: token }, (err, r) => (err ? reject(err) : resolve(JSON.stringify(r!.run_spec) + r!.nats_url))),
          );
          client.close();
        },
        onStep: async (report, _s, c) => {
          if (report.step === 1) scraped.push(await scrape(c.metricsPort), await scrape(good!.metricsPort));
        },
      });
      await good?.done;

      assert.equal(refusals['foreign-certificate']?.code, 'UNAVAILABLE', 'the TLS handshake fails: no call reaches the service');
      assert.equal(refusals.plaintext?.code, 'UNAVAILABLE');
      assert.equal(refusals['wrong-token']?.code, 'FAILED_PRECONDITION');
      assert.match(refusals['wrong-token'].message, /wrong cluster token: not admitted/);
      assert.equal(refusals['no-token']?.code, 'FAILED_PRECONDITION');
      assert.equal((summary as unknown as { workers: number }).workers, 1, 'only the admitted worker joined');
      assert.ok(adapterBytes(join(tmp.dir, 'cluster')).equals(reference), 'the adapter differs from advclip train');

      assert.equal(scraped.length, 2);
      assert.match(scraped[0], /advclip_step/);
      assert.match(scraped[1], /advclip_worker_samples_processed_total/);
      const everything = [...scraped, runConfigJson, ...coordinatorLog.lines, ...workerLog.lines].join('\n');
      assert.ok(!everything.includes(token), 'the cluster token leaks into an endpoint, the run configuration or a log line');
    } finally {
      await good?.close();
      tmp.done();
    }
  });
});

describe('advclip cluster keeps its secrets off command lines and out of logs', { skip: natsMissing }, () => {
  test('workers get the cluster token and NATS credentials by env; no process argv and no log line holds them; NATS works', async () => {
    const tmp = scratch();
    // a run that only ends when told: its worker is inspected while it trains, then the cluster is drained by SIGTERM
    const endless = TINY.map((a, i) => (TINY[i - 1] === '--iters' ? '100000' : a));
    let child: ChildProcess | undefined;
    try {
      child = spawn(process.execPath, [BIN, 'cluster', '--workers', '1', ...endless, '--out', join(tmp.dir, 'out'), '--metrics-port', '0', '--json'], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
      let stderr = '';
      const exited = new Promise<number | null>((resolve) => child!.on('exit', (code) => resolve(code)));
      // step 1 done: the worker has held an adapter version published after step 0 (over NATS, or the log says otherwise)
      await new Promise<void>((resolve, reject) => {
        child!.stderr!.on('data', (d) => {
          stderr += d;
          if (/"event":"step","step":1,/.test(stderr)) resolve();
        });
        void exited.then((code) => reject(new Error(`advclip cluster exited (${code}) before step 1:\n${stderr}`)));
      });
      const secrets = new Set<string>();
      const argvs = new Set<string>();
      const ps = execFileSync('ps', ['-e', '-o', 'pid=,ppid=,args='], { encoding: 'utf8' });
      for (const row of ps.split('\n')) {
        const m = /^\s*(\d+)\s+(\d+)\s+(.*)$/.exec(row);
        if (!m || Number(m[2]) !== child.pid) continue;
        argvs.add(m[3]);
        const env = readFileSync(`/proc/${m[1]}/environ`, 'utf8').split('\0');
        for (const kv of env) if (/^(NATS_PASSWORD|ADVCLIP_CLUSTER_TOKEN)=./.test(kv)) secrets.add(kv.slice(kv.indexOf('=') + 1));
      }
      child.kill('SIGTERM');
      assert.equal(await exited, 0, stderr);
      assert.ok([...argvs].some((a) => / worker --coordinator /.test(a)), 'saw the worker process');
      assert.equal(secrets.size, 2, 'a worker holds a cluster token and a NATS password in its env');
      for (const s of secrets) {
        assert.ok(![...argvs].some((a) => a.includes(s)), 'a secret is on a command line');
        assert.ok(!stderr.includes(s), 'a secret is in the log');
      }
      assert.doesNotMatch(stderr, /come over gRPC|refused our credentials|Permissions Violation/i);
      assert.match(stderr, /"auth":"user\/password; workers may not publish adapter versions"/);
    } finally {
      if (child && child.exitCode === null && child.signalCode === null) {
        const gone = new Promise((resolve) => child!.once('exit', resolve));
        child.kill('SIGTERM');
        await gone;
      }
      tmp.done();
    }
  });
});

test('every listener binds to loopback unless told otherwise (containers pass 0.0.0.0 explicitly)', () => {
  const coordinator = parseFlags(coordinatorCommand, ['--model', 'm', '--data', 'd', '--insecure']);
  assert.equal(coordinator.listen, '127.0.0.1:50051');
  assert.equal(coordinator['metrics-host'], '127.0.0.1');
  assert.equal(parseFlags(workerCommand, ['--coordinator', 'c:1'])['metrics-host'], '127.0.0.1');
  assert.equal(parseFlags(clusterCommand, ['--model', 'm', '--data', 'd', '--out', 'o'])['metrics-host'], '127.0.0.1');
  for (const file of ['docker-compose.yml', 'deploy/k8s/base/coordinator-job.yaml', 'deploy/k8s/base/worker-deployment.yaml']) {
    assert.match(readFileSync(join(REPO, file), 'utf8'), /0\.0\.0\.0/, `${file} chooses all interfaces itself`);
  }
});
