/**
 * deploy/nats/nats.conf, run by a real nats-server: TLS only (a plain-text
 * client is refused, a client verifies the server with the deployment's CA),
 * auth is on, the coordinator may publish adapter versions (KV + object
 * store), a worker may read them but not write them. The server picks its
 * own ports (-p -1, -m -1) and the test reads them from its log: no port is
 * taken, freed and handed over (another process could grab it meanwhile).
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Kvm } from '@nats-io/kv';
import { Objm } from '@nats-io/obj';
import { jetstreamManager } from '@nats-io/jetstream';
import { repoRoot, skipUnless } from './tools.ts';
import { connectNats, isNatsUnavailable } from '../../../services/protocol/nats-connection.ts';
import { makeThrowawayCerts, type ThrowawayCerts } from '../../../services/protocol/tls.ts';

const users = {
  NATS_COORDINATOR_USER: 'test-coordinator',
  NATS_COORDINATOR_PASSWORD: 'coordinator-secret',
  NATS_WORKER_USER: 'test-worker',
  NATS_WORKER_PASSWORD: 'worker-secret',
};

/** The client and monitor ports nats-server logs once it listens ("… client connections on 127.0.0.1:PORT"). */
async function portsFromLog(server: ChildProcess): Promise<{ client: number; monitor: number }> {
  const ports: { client?: number; monitor?: number } = {};
  const seen: string[] = [];
  for await (const line of createInterface({ input: server.stderr! })) {
    seen.push(line);
    const client = /Listening for client connections on [\d.]+:(\d+)/.exec(line);
    const monitor = /Starting http monitor on [\d.]+:(\d+)/.exec(line);
    if (client) ports.client = Number(client[1]);
    if (monitor) ports.monitor = Number(monitor[1]);
    if (/Server is ready/.test(line)) break;
  }
  assert.ok(ports.client && ports.monitor, `nats-server did not start:\n${seen.join('\n')}`);
  server.stderr!.resume();
  return ports as { client: number; monitor: number };
}

/** What a client that does not speak TLS sees: the INFO line, then (after its CONNECT) whatever the server says before hanging up. */
function plainTextSession(port: number): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve) => {
    const socket = tcpConnect(port, '127.0.0.1');
    let text = '';
    let sent = false;
    const done = (closed: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ text, closed });
    };
    const timer = setTimeout(() => done(false), 5_000);
    socket.on('data', (d) => {
      text += d;
      if (!sent && text.startsWith('INFO ')) {
        sent = true;
        socket.write(`CONNECT {"user":"${users.NATS_WORKER_USER}","pass":"${users.NATS_WORKER_PASSWORD}"}\r\nPING\r\n`);
      }
    });
    socket.on('close', () => done(true));
    socket.on('error', () => undefined);
  });
}

describe('deploy/nats/nats.conf on a real nats-server', { skip: skipUnless('nats-server', 'Debian package nats-server') }, () => {
  let dir: string;
  let certs: ThrowawayCerts;
  let server: ChildProcess;
  let port: number;
  let url: string;
  const open: NatsConnection[] = [];
  const tls = () => ({ caFile: certs.caCertPath });
  const as = async (user: string, pass: string) => {
    const nc = await connect({ servers: url, user, pass, reconnect: false, timeout: 3000, tls: tls() });
    open.push(nc);
    return nc;
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'advclip-nats-'));
    certs = await makeThrowawayCerts(join(dir, 'certs'));
    server = spawn(
      'nats-server',
      ['-c', join(repoRoot, 'deploy/nats/nats.conf'), '-a', '127.0.0.1', '-p', '-1', '-m', '-1', '-sd', join(dir, 'js'), '-js'],
      { env: { ...process.env, ...users, NATS_TLS_CERT: certs.server.certPath, NATS_TLS_KEY: certs.server.keyPath }, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    const ports = await portsFromLog(server);
    port = ports.client;
    url = `tls://127.0.0.1:${port}`;
    const health = await fetch(`http://127.0.0.1:${ports.monitor}/healthz?js-enabled-only=true`);
    assert.equal(health.status, 200, 'JetStream is up');
  });

  after(async () => {
    await Promise.all(open.map((nc) => nc.close()));
    if (server && server.exitCode === null) {
      const exited = new Promise((resolve) => server.once('exit', resolve));
      server.kill('SIGTERM');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it('does not start without its TLS certificate (NATS_TLS_CERT/NATS_TLS_KEY unset)', async () => {
    const bare = spawn('nats-server', ['-c', join(repoRoot, 'deploy/nats/nats.conf'), '-a', '127.0.0.1', '-p', '-1', '-m', '-1'], { env: { ...process.env, ...users }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    bare.stderr!.on('data', (d) => (stderr += d));
    const code = await new Promise((resolve) => bare.once('exit', resolve));
    assert.notEqual(code, 0);
    assert.match(stderr, /NATS_TLS_CERT/);
  });

  it('speaks TLS only: a plain-text client is told so and hung up on before a session starts', async () => {
    const { text, closed } = await plainTextSession(port);
    assert.match(text, /^INFO .*"tls_required":true/);
    assert.doesNotMatch(text, /^(PONG|\+OK)/m, 'no plain-text session');
    assert.ok(closed, 'the server closed the connection');
  });

  it('is verified by its CA: connectNats over tls:// with --nats-ca works, without the CA (system roots) it is refused', async () => {
    const link = await connectNats({ servers: url, user: users.NATS_WORKER_USER, password: users.NATS_WORKER_PASSWORD, tls: tls(), connectTimeoutMs: 3_000 });
    assert.ok(!isNatsUnavailable(link), isNatsUnavailable(link) ? link.error.message : '');
    await link.close();
    const unverified = await connectNats({ servers: url, user: users.NATS_WORKER_USER, password: users.NATS_WORKER_PASSWORD, connectTimeoutMs: 3_000 });
    assert.ok(isNatsUnavailable(unverified), 'a server certificate from an unknown CA is refused');
    assert.equal(unverified.error.code, 'FAILED_PRECONDITION');
    assert.match(unverified.error.message, /failed TLS/);
    await assert.rejects(connectNats({ servers: url, tls: { caFile: join(dir, 'absent.crt') } }), /NATS TLS file .*absent\.crt cannot be read/);
  });

  it('a client that asks for TLS (tls:// or --nats-ca) never falls back to plain text on a server without TLS', async () => {
    const plain = spawn('nats-server', ['-a', '127.0.0.1', '-p', '-1', '-m', '-1'], { stdio: ['ignore', 'ignore', 'pipe'] });
    try {
      const { client } = await portsFromLog(plain);
      for (const options of [{ servers: `tls://127.0.0.1:${client}` }, { servers: `nats://127.0.0.1:${client}`, tls: tls() }]) {
        const link = await connectNats({ ...options, connectTimeoutMs: 3_000 });
        assert.ok(isNatsUnavailable(link), `${JSON.stringify(options)} connected in plain text`);
        assert.match(link.error.message, /does not support 'tls'/);
      }
      const link = await connectNats({ servers: `nats://127.0.0.1:${client}`, connectTimeoutMs: 3_000 });
      assert.ok(!isNatsUnavailable(link), 'nats:// without TLS options stays plain (advclip cluster, tests)');
      await link.close();
    } finally {
      const exited = new Promise((resolve) => plain.once('exit', resolve));
      plain.kill('SIGTERM');
      await exited;
    }
  });

  it('refuses clients without the right password', async () => {
    await assert.rejects(connect({ servers: url, reconnect: false, timeout: 3000, tls: tls() }), /Authorization Violation/i);
    await assert.rejects(connect({ servers: url, user: users.NATS_WORKER_USER, pass: 'wrong', reconnect: false, timeout: 3000, tls: tls() }), /Authorization Violation/i);
  });

  it('lets the coordinator publish an adapter version (KV key + object) and a worker read it', async () => {
    const coordinator = await as(users.NATS_COORDINATOR_USER, users.NATS_COORDINATOR_PASSWORD);
    const kv = await new Kvm(coordinator).create('advclip-test');
    await kv.put('adapter.latest', JSON.stringify({ version: 1 }));
    const objects = await new Objm(coordinator).create('advclip-test-adapters');
    await objects.putBlob({ name: 'adapter-1' }, new Uint8Array([1, 2, 3]));

    const worker = await as(users.NATS_WORKER_USER, users.NATS_WORKER_PASSWORD);
    const seen = await (await new Kvm(worker).open('advclip-test')).get('adapter.latest');
    assert.deepEqual(seen?.json(), { version: 1 });
    const blob = await (await new Objm(worker).open('advclip-test-adapters')).getBlob('adapter-1');
    assert.deepEqual([...blob!], [1, 2, 3]);
  });

  it('does not let a worker publish an adapter version or touch the streams', async () => {
    const worker = await as(users.NATS_WORKER_USER, users.NATS_WORKER_PASSWORD);
    const kv = await new Kvm(worker).open('advclip-test');
    await assert.rejects(kv.put('adapter.latest', JSON.stringify({ version: 666 })), /permission/i);
    const objects = await new Objm(worker).open('advclip-test-adapters');
    await assert.rejects(objects.putBlob({ name: 'adapter-666' }, new Uint8Array([6])), /permission/i);
    const jsm = await jetstreamManager(worker);
    await assert.rejects(jsm.streams.delete('KV_advclip-test'), /permission/i);
    const latest = await (await new Kvm(await as(users.NATS_COORDINATOR_USER, users.NATS_COORDINATOR_PASSWORD)).open('advclip-test')).get('adapter.latest');
    assert.deepEqual(latest?.json(), { version: 1 });
  });
});
