/**
 * Adapter versions over a real nats-server (JetStream) on loopback: the
 * compose file's image where a Docker engine is, else Debian's binary
 * (test/helpers/services.ts). Each test uses its own cluster name, so
 * buckets and subjects do not mix.
 */
import { once } from 'node:events';
import { createConnection, createServer, type AddressInfo, type Socket } from 'node:net';
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { Kvm } from '@nats-io/kv';
import { Objm } from '@nats-io/obj';
import { AdvclipError } from '../../services/core/errors.ts';
import { encodeInlineLatest, encodeObjectLatest, parseLatest } from '../../services/protocol/adapter-latest.ts';
import {
  AdapterPublisher,
  AdapterSubscriber,
  sha256Hex,
  type HeldAdapter,
} from '../../services/protocol/adapter-store.ts';
import { publishEvent, subscribeEvents, type ClusterEvent } from '../../services/protocol/events.ts';
import {
  connectNats,
  isNatsUnavailable,
  type NatsConnectOptions,
  type NatsLink,
} from '../../services/protocol/nats-connection.ts';
import { findNatsServerBinary, startNatsServer } from '../../services/protocol/nats-server.ts';
import { natsSkip, startNats, type NatsService } from '../helpers/services.ts';

const USER = 'advclip';
const PASSWORD = 'test-secret';
/** The trainable parameters of ViT-B LoRA r=2 on q,k,v of both towers. */
const LORA_FLOATS = 184_320;
/** More than the default max_payload (1 MiB) holds: a bigger LoRA rank. */
const TOO_BIG_FLOATS = 300_000;

/** A deterministic blob standing in for adapter safetensors. */
function blobFor(version: number, floats = 1024): Uint8Array {
  const values = Float32Array.from({ length: floats }, (_, i) => Math.sin(version * 1000 + i));
  return new Uint8Array(values.buffer);
}

const isCode = (code: string) => (e: unknown) => e instanceof AdvclipError && e.code === code;

describe('adapter store over a live nats-server', { skip: await natsSkip() }, () => {
  let server: NatsService;
  const cleanups: (() => Promise<void>)[] = [];

  before(async () => {
    server = await startNats({ user: USER, password: PASSWORD });
  });

  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
    await server?.close();
  });

  async function link(options: Partial<NatsConnectOptions> & { cluster: string }, on = server): Promise<NatsLink> {
    const result = await connectNats({ servers: on.url, user: USER, password: PASSWORD, ...options });
    if (isNatsUnavailable(result)) throw result.error;
    cleanups.push(() => result.close());
    return result;
  }

  async function openPair(cluster: string, on = server) {
    const publisher = await AdapterPublisher.open(await link({ cluster, name: 'coordinator' }, on), { keep: 4 });
    const subscriber = await AdapterSubscriber.open(await link({ cluster, name: 'worker' }, on));
    cleanups.push(() => publisher.close(), () => subscriber.close());
    return { publisher, subscriber };
  }

  async function objectNames(cluster: string): Promise<string[]> {
    const reader = await link({ cluster, name: 'reader' });
    const objects = await new Objm(reader.nc).open(reader.subjects.adapterObjectBucket);
    return (await objects.list()).filter((o) => !o.deleted).map((o) => o.name).sort();
  }

  test('versions 1..N arrive consecutively, inline in adapter.latest, with verified hashes and exact bytes', async () => {
    const { publisher, subscriber } = await openPair('consecutive');
    const seen: HeldAdapter[] = [];
    subscriber.onVersion((a) => seen.push(a));
    for (let v = 1; v <= 10; v++) {
      const published = await publisher.publish(v, blobFor(v, v === 10 ? LORA_FLOATS : 1024));
      assert.deepEqual(published, { version: v, sha256: sha256Hex(blobFor(v, v === 10 ? LORA_FLOATS : 1024)), carried: 'inline' });
      await subscriber.waitForVersion(v, 5_000);
    }
    assert.deepEqual(seen.map((a) => a.version), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    for (const adapter of seen) {
      assert.equal(sha256Hex(adapter.bytes), adapter.sha256);
      assert.deepEqual(adapter.bytes, blobFor(adapter.version, adapter.version === 10 ? LORA_FLOATS : 1024));
    }
    assert.deepEqual(await objectNames('consecutive'), [], 'nothing went to the object store');
    await assert.rejects(publisher.publish(10, blobFor(10)), isCode('FAILED_PRECONDITION'));
  });

  test('a late subscriber catches up to the latest version; versions beyond keep are no longer kept', async () => {
    const { publisher } = await openPair('late');
    for (let v = 1; v <= 7; v++) await publisher.publish(v, blobFor(v));
    const late = await AdapterSubscriber.open(await link({ cluster: 'late', name: 'late-worker' }));
    cleanups.push(() => late.close());
    const held = await late.waitForVersion(7, 5_000);
    assert.equal(held.version, 7);
    assert.deepEqual(held.bytes, blobFor(7));
    // keep = 4: versions 4..7 stay fetchable by number, 3 is gone
    assert.deepEqual((await late.fetch(4, sha256Hex(blobFor(4)))).bytes, blobFor(4));
    await assert.rejects(late.fetch(3, sha256Hex(blobFor(3))), isCode('NOT_FOUND'));
    assert.equal(late.latest()?.version, 7, 'fetching an older version does not replace the newest');
  });

  test('an inline blob whose SHA-256 does not match its header is refused (DATA_LOSS) and not held', async () => {
    const { publisher, subscriber } = await openPair('tampered');
    await publisher.publish(1, blobFor(1));
    await subscriber.waitForVersion(1, 5_000);
    const attacker = await link({ cluster: 'tampered', name: 'attacker' });
    const kv = await new Kvm(attacker.nc).open(attacker.subjects.adapterKvBucket);
    const corrupt = blobFor(2).slice();
    corrupt[100] ^= 1;
    await kv.put('adapter.latest', encodeInlineLatest(2, sha256Hex(blobFor(2)), corrupt, attacker.nc.info!.max_payload)!);
    await assert.rejects(subscriber.waitForVersion(2, 5_000), (e: unknown) => isCode('DATA_LOSS')(e) && /version 2: inline blob has SHA-256 [0-9a-f]{64}, expected [0-9a-f]{64}; not accepted/.test((e as Error).message));
    assert.equal(subscriber.latest()?.version, 1);
    await assert.rejects(subscriber.fetch(1, '0'.repeat(64)), (e: unknown) => isCode('DATA_LOSS')(e) && /version 1 on NATS has SHA-256/.test((e as Error).message), 'a task naming another hash');
    await assert.rejects(subscriber.fetch(2, sha256Hex(blobFor(2))), isCode('DATA_LOSS'), 'the corrupt version read again from the history');
    await publisher.publish(3, blobFor(3));
    assert.equal((await subscriber.waitForVersion(3, 5_000)).version, 3, 'a good version after a bad one is accepted');
  });

  test('a blob too big for one message goes through the object store: verified, fetched by number, pruned beyond keep', async () => {
    const { publisher, subscriber } = await openPair('big');
    const published = await publisher.publish(1, blobFor(1, TOO_BIG_FLOATS));
    assert.deepEqual(published, { version: 1, sha256: sha256Hex(blobFor(1, TOO_BIG_FLOATS)), carried: 'object' });
    assert.deepEqual((await subscriber.waitForVersion(1, 5_000)).bytes, blobFor(1, TOO_BIG_FLOATS));
    assert.equal((await publisher.publish(2, blobFor(2))).carried, 'inline', 'a small version after a big one goes inline');
    for (let v = 3; v <= 6; v++) assert.equal((await publisher.publish(v, blobFor(v, TOO_BIG_FLOATS))).carried, 'object');
    assert.deepEqual((await subscriber.waitForVersion(6, 5_000)).bytes, blobFor(6, TOO_BIG_FLOATS));
    assert.deepEqual(await objectNames('big'), ['adapter-3', 'adapter-4', 'adapter-5', 'adapter-6'], 'keep = 4 blobs');
    const late = await AdapterSubscriber.open(await link({ cluster: 'big', name: 'late-worker' }));
    cleanups.push(() => late.close());
    assert.deepEqual((await late.waitForVersion(6, 5_000)).bytes, blobFor(6, TOO_BIG_FLOATS));
    assert.deepEqual((await late.fetch(3, sha256Hex(blobFor(3, TOO_BIG_FLOATS)))).bytes, blobFor(3, TOO_BIG_FLOATS));
    await assert.rejects(late.fetch(1, sha256Hex(blobFor(1, TOO_BIG_FLOATS))), isCode('NOT_FOUND'));

    // a pointer to a blob with another hash (only the coordinator could write one)
    const attacker = await link({ cluster: 'big', name: 'attacker' });
    const kv = await new Kvm(attacker.nc).open(attacker.subjects.adapterKvBucket);
    await kv.put('adapter.latest', encodeObjectLatest(7, sha256Hex(blobFor(7, TOO_BIG_FLOATS)), 'adapter-6'));
    await assert.rejects(late.waitForVersion(7, 5_000), (e: unknown) => isCode('DATA_LOSS')(e) && /version 7: blob "adapter-6" has SHA-256 [0-9a-f]{64}, expected/.test((e as Error).message));
    await kv.put('adapter.latest', encodeObjectLatest(8, sha256Hex(blobFor(8)), 'adapter-8'));
    await assert.rejects(late.waitForVersion(8, 5_000), (e: unknown) => isCode('NOT_FOUND')(e) && /blob "adapter-8" is not in the object store/.test((e as Error).message));
    assert.equal(late.latest()?.version, 6);
  });

  test('a value of exactly max_payload goes inline and reaches a watcher, a late reader and a fetch by number', async () => {
    const { publisher, subscriber } = await openPair('boundary');
    const reader = await link({ cluster: 'boundary', name: 'reader' });
    const maxPayload = reader.nc.info!.max_payload;
    const headerBytes = encodeInlineLatest(1, 'f'.repeat(64), new Uint8Array(maxPayload), 2 * maxPayload)!.byteLength - maxPayload;
    const blob = new Uint8Array(maxPayload - headerBytes).map((_, i) => i & 0xff);
    assert.equal((await publisher.publish(1, blob)).carried, 'inline');
    assert.deepEqual((await subscriber.waitForVersion(1, 5_000)).bytes, blob);
    const kv = await new Kvm(reader.nc).open(reader.subjects.adapterKvBucket);
    const read = parseLatest((await kv.get('adapter.latest'))!.value);
    assert.ok('inline' in read && read.inline.byteLength === blob.byteLength, 'a direct get (the catch-up after a reconnect) reads it whole');
    const oneMore = new Uint8Array(blob.byteLength + 1).map((_, i) => (i * 3) & 0xff);
    assert.equal((await publisher.publish(2, oneMore)).carried, 'object', 'one byte more goes to the object store');
    assert.deepEqual((await subscriber.waitForVersion(2, 5_000)).bytes, oneMore);
    const late = await AdapterSubscriber.open(await link({ cluster: 'boundary', name: 'late-worker' }));
    cleanups.push(() => late.close());
    assert.equal((await late.waitForVersion(2, 5_000)).version, 2);
    assert.deepEqual((await late.fetch(1, sha256Hex(blob))).bytes, blob);
  });

  test('a bucket left by an earlier run with another history keeps the publisher’s number of versions', async () => {
    const earlier = await link({ cluster: 'history' });
    await new Kvm(earlier.nc).create(earlier.subjects.adapterKvBucket, { history: 1 });
    const { publisher, subscriber } = await openPair('history');
    const kv = await new Kvm(earlier.nc).open(earlier.subjects.adapterKvBucket);
    assert.equal((await kv.status()).history, 4);
    for (let v = 1; v <= 6; v++) await publisher.publish(v, blobFor(v));
    await subscriber.waitForVersion(6, 5_000);
    assert.deepEqual((await subscriber.fetch(3, sha256Hex(blobFor(3)))).bytes, blobFor(3));
    await assert.rejects(subscriber.fetch(2, sha256Hex(blobFor(2))), isCode('NOT_FOUND'));
    await publisher.reset();
    assert.equal(await kv.get('adapter.latest').then((e) => e?.operation), 'PURGE', 'reset purges the key');
    await assert.rejects(subscriber.fetch(5, sha256Hex(blobFor(5))), isCode('NOT_FOUND'), 'and its history');
  });

  test('waitForVersion times out with DEADLINE_EXCEEDED when nothing comes', async () => {
    const { subscriber } = await openPair('timeout');
    await assert.rejects(subscriber.waitForVersion(1, 200), isCode('DEADLINE_EXCEEDED'));
  });

  test('nats-server restarted mid-stream: publishing resumes after reconnect and adapter.latest with its history survives', async (t: TestContext) => {
    t.diagnostic(`nats-server runs as a ${server.backend}`);
    const own = await startNats({ user: USER, password: PASSWORD });
    cleanups.push(() => own.close());
    const { publisher, subscriber } = await openPair('restart', own);
    for (let v = 1; v <= 3; v++) {
      await publisher.publish(v, blobFor(v));
      await subscriber.waitForVersion(v, 5_000);
    }
    const started = performance.now();
    await own.restart();
    let version = 4;
    const deadline = Date.now() + 20_000;
    for (;;) {
      try {
        await publisher.publish(version, blobFor(version));
        break;
      } catch (err) {
        assert.ok(isCode('UNAVAILABLE')(err), String(err));
        t.diagnostic(`${Math.round(performance.now() - started)} ms: ${(err as Error).message}`);
        if (Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    t.diagnostic(`first publish after restart succeeded ${Math.round(performance.now() - started)} ms after the restart began`);
    for (version = 5; version <= 6; version++) await publisher.publish(version, blobFor(version));
    const held = await subscriber.waitForVersion(6, 10_000);
    assert.deepEqual(held.bytes, blobFor(6));

    await own.restart();
    const fresh = await AdapterSubscriber.open(await link({ cluster: 'restart', name: 'after-restart' }, own));
    cleanups.push(() => fresh.close());
    assert.equal((await fresh.waitForVersion(6, 5_000)).version, 6, 'adapter.latest survived the restart');
    assert.deepEqual((await fresh.fetch(3, sha256Hex(blobFor(3)))).bytes, blobFor(3), 'older versions survived the restart');
  });

  test('publish → subscriber holds latency for a 184,320-float32 adapter (50 versions)', async (t: TestContext) => {
    const { publisher, subscriber } = await openPair('latency');
    let started = 0;
    const latencies: number[] = [];
    subscriber.onVersion(() => latencies.push(performance.now() - started));
    const blob = blobFor(1, LORA_FLOATS);
    for (let v = 1; v <= 50; v++) {
      new DataView(blob.buffer).setUint32(0, v); // a different blob each version
      started = performance.now();
      await publisher.publish(v, blob);
      await subscriber.waitForVersion(v, 5_000);
    }
    assert.equal(latencies.length, 50);
    const sorted = [...latencies].sort((a, b) => a - b);
    const pct = (p: number) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
    t.diagnostic(latencies.map((x) => x.toFixed(1)).join(' '));
    t.diagnostic(
      `publish→held latency over 50 versions of ${LORA_FLOATS * 4} bytes: p50 ${pct(50).toFixed(1)} ms, p99 ${pct(99).toFixed(1)} ms, max ${sorted.at(-1)!.toFixed(1)} ms`,
    );
  });

  test('cluster events reach subscribers of the same cluster only', async () => {
    const a = await link({ cluster: 'events-a' });
    const b = await link({ cluster: 'events-b' });
    const got: ClusterEvent[] = [];
    const other: ClusterEvent[] = [];
    const subA = subscribeEvents(a, (e) => got.push(e));
    const subB = subscribeEvents(b, (e) => other.push(e));
    cleanups.push(async () => subA.close(), async () => subB.close());
    await a.nc.flush();
    await b.nc.flush();
    publishEvent(a, 'worker.joined', { worker_id: 'w1', worker_name: 'pod-1' });
    publishEvent(a, 'step', { step: 3, adapter_version: 3, loss: 1.25 });
    await a.nc.flush();
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(got.map((e) => e.kind), ['worker.joined', 'step']);
    assert.equal(got[1].loss, 1.25);
    assert.equal(other.length, 0);
  });

  test('without a reachable or willing NATS, connect returns NatsUnavailable instead of throwing', async () => {
    const closed = await closedLoopbackPort();
    try {
      const down = await connectNats({ servers: `nats://127.0.0.1:${closed.port}`, connectTimeoutMs: 1_000 });
      assert.ok(isNatsUnavailable(down));
      assert.equal(down.error.code, 'UNAVAILABLE');
      assert.match(down.error.message, new RegExp(`127.0.0.1:${closed.port}.*not reachable`));
    } finally {
      closed.close();
    }
    const wrongPassword = await connectNats({ servers: server.url, user: USER, password: 'wrong', connectTimeoutMs: 1_000 });
    assert.ok(isNatsUnavailable(wrongPassword));
    assert.equal(wrongPassword.error.code, 'FAILED_PRECONDITION');
    assert.doesNotMatch(wrongPassword.error.message, /wrong/, 'the password is not echoed');
  });
});

/**
 * A loopback port where a connect is refused for as long as the handle is open: the local end of
 * a connection we hold. The kernel picks it for our outgoing socket among ports no listener has
 * bound, and while that socket lives, binding the port fails (EADDRINUSE: the socket has no
 * SO_REUSEADDR), so no server can appear there. A port found free and closed again could be taken
 * by any other test's server before the connect.
 */
async function closedLoopbackPort(): Promise<{ port: number; close(): void }> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const accepted = once(server, 'connection') as Promise<[Socket]>;
  const client = createConnection({ host: '127.0.0.1', port: (server.address() as AddressInfo).port });
  await once(client, 'connect');
  const [peer] = await accepted;
  return {
    port: client.localPort!,
    close: () => {
      client.destroy();
      peer.destroy();
      server.close();
    },
  };
}

test('a missing nats-server binary is a clear UNAVAILABLE error', async () => {
  assert.throws(() => findNatsServerBinary('/nonexistent/nats-server'), (e: unknown) => isCode('UNAVAILABLE')(e) && /apt-get install nats-server|--nats URL/.test((e as Error).message));
  await assert.rejects(startNatsServer({ binary: 'advclip-no-such-nats-server' }), isCode('UNAVAILABLE'));
});
