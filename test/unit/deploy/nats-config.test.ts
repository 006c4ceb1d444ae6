/**
 * deploy/nats/nats.conf, run by a real nats-server: auth is on, the
 * coordinator may publish adapter versions (KV + object store), a worker may
 * read them but not write them.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Kvm } from '@nats-io/kv';
import { Objm } from '@nats-io/obj';
import { jetstreamManager } from '@nats-io/jetstream';
import { repoRoot, skipUnless } from './tools.ts';
import { freeLoopbackPort } from '../../../services/protocol/nats-server.ts';

const users = {
  NATS_COORDINATOR_USER: 'test-coordinator',
  NATS_COORDINATOR_PASSWORD: 'coordinator-secret',
  NATS_WORKER_USER: 'test-worker',
  NATS_WORKER_PASSWORD: 'worker-secret',
};

describe('deploy/nats/nats.conf on a real nats-server', { skip: skipUnless('nats-server', 'Debian package nats-server') }, () => {
  let dir: string;
  let server: ChildProcess;
  let url: string;
  const open: NatsConnection[] = [];
  const as = async (user: string, pass: string) => {
    const nc = await connect({ servers: url, user, pass, reconnect: false, timeout: 3000 });
    open.push(nc);
    return nc;
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'advclip-nats-'));
    const [port, monitor] = [await freeLoopbackPort(), await freeLoopbackPort()];
    url = `nats://127.0.0.1:${port}`;
    server = spawn(
      'nats-server',
      ['-c', join(repoRoot, 'deploy/nats/nats.conf'), '-a', '127.0.0.1', '-p', String(port), '-m', String(monitor), '-sd', dir, '-js'],
      { env: { ...process.env, ...users }, stdio: 'ignore' },
    );
    const deadline = Date.now() + 10_000;
    while (!(await fetch(`http://127.0.0.1:${monitor}/healthz?js-enabled-only=true`).then((r) => r.ok, () => false))) {
      assert.ok(Date.now() < deadline, 'nats-server did not become healthy');
      await new Promise((r) => setTimeout(r, 100));
    }
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

  it('refuses clients without the right password', async () => {
    await assert.rejects(connect({ servers: url, reconnect: false, timeout: 3000 }), /Authorization Violation/i);
    await assert.rejects(connect({ servers: url, user: users.NATS_WORKER_USER, pass: 'wrong', reconnect: false, timeout: 3000 }), /Authorization Violation/i);
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
