/**
 * Adapter versions over a real nats-server (JetStream) spawned on loopback.
 * Each test uses its own cluster name, so buckets and subjects do not mix.
 */
import { after, before, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { Kvm } from '@nats-io/kv';
import { AdvclipError } from '../../services/core/errors.ts';
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
import { findNatsServerBinary, freeLoopbackPort, startNatsServer, type NatsServer } from '../../services/protocol/nats-server.ts';

const USER = 'advclip';
const PASSWORD = 'test-secret';
/** The trainable parameters of ViT-B LoRA r=2 on q,k,v of both towers. */
const LORA_FLOATS = 184_320;

let server: NatsServer;
const cleanups: (() => Promise<void>)[] = [];

before(async () => {
  server = await startNatsServer({ user: USER, password: PASSWORD });
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

/** A deterministic blob standing in for adapter safetensors. */
function blobFor(version: number, floats = 1024): Uint8Array {
  const values = Float32Array.from({ length: floats }, (_, i) => Math.sin(version * 1000 + i));
  return new Uint8Array(values.buffer);
}

const isCode = (code: string) => (e: unknown) => e instanceof AdvclipError && e.code === code;

test('versions 1..N arrive consecutively with verified hashes and exact bytes', async () => {
  const { publisher, subscriber } = await openPair('consecutive');
  const seen: HeldAdapter[] = [];
  subscriber.onVersion((a) => seen.push(a));
  for (let v = 1; v <= 10; v++) {
    const pointer = await publisher.publish(v, blobFor(v));
    assert.deepEqual(pointer, { version: v, sha256: sha256Hex(blobFor(v)), object: `adapter-${v}` });
    await subscriber.waitForVersion(v, 5_000);
  }
  assert.deepEqual(seen.map((a) => a.version), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  for (const adapter of seen) {
    assert.equal(sha256Hex(adapter.bytes), adapter.sha256);
    assert.deepEqual(adapter.bytes, blobFor(adapter.version));
  }
  await assert.rejects(publisher.publish(10, blobFor(10)), isCode('FAILED_PRECONDITION'));
});

test('a late subscriber catches up to the latest version; old blobs beyond keep are pruned', async () => {
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

test('a pointer whose SHA-256 does not match the blob is refused (DATA_LOSS) and not held', async () => {
  const { publisher, subscriber } = await openPair('tampered');
  await publisher.publish(1, blobFor(1));
  await subscriber.waitForVersion(1, 5_000);
  const attacker = await link({ cluster: 'tampered', name: 'attacker' });
  const kv = await new Kvm(attacker.nc).open(attacker.subjects.adapterKvBucket);
  await kv.put('adapter.latest', JSON.stringify({ version: 2, sha256: 'f'.repeat(64), object: 'adapter-1' }));
  await assert.rejects(subscriber.waitForVersion(2, 5_000), (e: unknown) => isCode('DATA_LOSS')(e) && /not accepted/.test((e as Error).message));
  assert.equal(subscriber.latest()?.version, 1);
  await assert.rejects(subscriber.fetch(1, '0'.repeat(64)), isCode('DATA_LOSS'));
  await publisher.publish(3, blobFor(3));
  assert.equal((await subscriber.waitForVersion(3, 5_000)).version, 3, 'a good version after a bad one is accepted');
});

test('waitForVersion times out with DEADLINE_EXCEEDED when nothing comes', async () => {
  const { subscriber } = await openPair('timeout');
  await assert.rejects(subscriber.waitForVersion(1, 200), isCode('DEADLINE_EXCEEDED'));
});

test('nats-server restarted mid-stream: publishing resumes after reconnect and KV + objects survive', async (t: TestContext) => {
  const own = await startNatsServer({ user: USER, password: PASSWORD });
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
  assert.deepEqual((await fresh.fetch(3, sha256Hex(blobFor(3)))).bytes, blobFor(3), 'blobs survived the restart');
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
  const closedPort = await freeLoopbackPort();
  const down = await connectNats({ servers: `nats://127.0.0.1:${closedPort}`, connectTimeoutMs: 1_000 });
  assert.ok(isNatsUnavailable(down));
  assert.equal(down.error.code, 'UNAVAILABLE');
  assert.match(down.error.message, new RegExp(`127.0.0.1:${closedPort}.*not reachable`));
  const wrongPassword = await connectNats({ servers: server.url, user: USER, password: 'wrong', connectTimeoutMs: 1_000 });
  assert.ok(isNatsUnavailable(wrongPassword));
  assert.equal(wrongPassword.error.code, 'FAILED_PRECONDITION');
  assert.doesNotMatch(wrongPassword.error.message, /wrong/, 'the password is not echoed');
});

test('a missing nats-server binary is a clear UNAVAILABLE error', async () => {
  assert.throws(() => findNatsServerBinary('/nonexistent/nats-server'), (e: unknown) => isCode('UNAVAILABLE')(e) && /apt-get install nats-server|--nats URL/.test((e as Error).message));
  await assert.rejects(startNatsServer({ binary: 'advclip-no-such-nats-server' }), isCode('UNAVAILABLE'));
});
