/**
 * Flagging in the worker registry: bad results are counted per worker; at
 * the limit the worker is told to drain and dropped as excluded, so its
 * chunks go elsewhere. Worker ids cannot be guessed from the name.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_MAX_BAD_RESULTS, WorkerRegistry, type RegistryEvent } from '../../../services/coordinator/worker-registry.ts';
import type { CoordinatorMessage } from '../../../services/protocol/generated/advclip/v1/CoordinatorMessage.ts';
import type { WorkerCapabilities__Output } from '../../../services/protocol/generated/advclip/v1/WorkerCapabilities.ts';

const caps = (worker_name: string) => ({ worker_name, backend: 'cpu', device: 'cpu', cores: 1, model_sha256: '', version: 't' }) as WorkerCapabilities__Output;

function live(registry: WorkerRegistry, name: string) {
  const sent: CoordinatorMessage[] = [];
  let ended = false;
  const id = registry.admit(caps(name));
  registry.join(id, 0, (m) => sent.push(m), () => (ended = true));
  return { id, sent, ended: () => ended };
}

test('a worker is told to drain and dropped as excluded at its third bad result; counts are per worker', () => {
  assert.equal(DEFAULT_MAX_BAD_RESULTS, 3);
  const registry = new WorkerRegistry();
  const events: RegistryEvent[] = [];
  registry.onEvent((e) => events.push(e));
  const bad = live(registry, 'bad');
  const other = live(registry, 'other');
  assert.equal(registry.flagBadResult(bad.id, 'non_finite'), 1);
  assert.equal(registry.flagBadResult(other.id, 'bad_shape'), 1);
  assert.equal(registry.flagBadResult(bad.id, 'bad_shape'), 2);
  assert.equal(registry.badResults(bad.id), 2);
  assert.ok(registry.get(bad.id), 'still live below the limit');
  assert.equal(registry.flagBadResult(bad.id, 'bad_chunks'), 3);
  assert.equal(registry.get(bad.id), undefined);
  assert.ok(bad.ended());
  assert.deepEqual(bad.sent, [{ drain: { reason: 'excluded after 3 bad results (non_finite, bad_shape, bad_chunks)' } }]);
  const lost = events.find((e) => e.kind === 'lost');
  assert.deepEqual(lost && { id: lost.session.id, reason: lost.reason, excluded: lost.excluded }, { id: bad.id, reason: 'excluded after 3 bad results (non_finite, bad_shape, bad_chunks)', excluded: true });
  assert.deepEqual(registry.live().map((w) => w.id), [other.id]);
  assert.equal(registry.badResults(other.id), 1);
  assert.equal(registry.flagBadResult(bad.id, 'non_finite'), 0, 'a dropped worker is not counted again');
  assert.throws(() => registry.join(bad.id, 0, () => undefined, () => undefined), /was not admitted/, 'nor can it rejoin under its id');
});

test('a worker lost for another reason is not marked excluded; the limit is an option', () => {
  const registry = new WorkerRegistry({ maxBadResults: 1 });
  const events: RegistryEvent[] = [];
  registry.onEvent((e) => events.push(e));
  const a = live(registry, 'a');
  registry.lose(a.id, 'the worker closed its stream');
  const b = live(registry, 'b');
  registry.flagBadResult(b.id, 'malformed');
  assert.deepEqual(events.filter((e) => e.kind === 'lost').map((e) => e.kind === 'lost' && e.excluded), [false, true]);
});

test('worker ids carry a random part: two workers of one name get different, unguessable ids', () => {
  const registry = new WorkerRegistry();
  const ids = [registry.admit(caps('pod')), registry.admit(caps('pod'))];
  for (const id of ids) assert.match(id, /^w\d+-pod-[0-9a-f]{8}$/);
  assert.notEqual(ids[0].slice(-8), ids[1].slice(-8));
  assert.throws(() => registry.join('w1-pod', 0, () => undefined, () => undefined), /was not admitted/);
});

test('join: an id Register did not give, and a second stream for a live id, are FAILED_PRECONDITION; the first stream keeps working (errors rows 4, 5)', () => {
  const registry = new WorkerRegistry();
  const first = live(registry, 'w');
  const refused = (f: () => unknown, pattern: RegExp) => assert.throws(f, (e: unknown) => (e as { code?: string }).code === 'FAILED_PRECONDITION' && pattern.test((e as Error).message));
  refused(() => registry.join('w9-made-up', 0, () => undefined, () => undefined), /worker "w9-made-up" was not admitted: call Register first/);
  refused(() => registry.join(first.id, 0, () => undefined, () => undefined), new RegExp(`worker "${first.id}" already has a Work stream`));
  assert.deepEqual(registry.live().map((w) => w.id), [first.id]);
  assert.equal(first.ended(), false, 'the first stream is not closed by the second');
});

test('a quarantined identity is told to drain, dropped as excluded, and refused when it registers again', () => {
  const registry = new WorkerRegistry();
  const events: RegistryEvent[] = [];
  registry.onEvent((e) => events.push(e));
  const sent: CoordinatorMessage[] = [];
  const id = registry.admit({ worker_name: 'spot-7' } as WorkerCapabilities__Output);
  registry.join(id, 0, (m) => sent.push(m), () => undefined);
  registry.quarantine(id, 'chunk 3 differs from two others');
  assert.match(sent[0].drain!.reason!, /quarantined: chunk 3 differs/);
  assert.deepEqual(events.map((e) => e.kind), ['joined', 'lost']);
  assert.equal(registry.live().length, 0);
  assert.throws(() => registry.admit({ worker_name: 'spot-7' } as WorkerCapabilities__Output), /worker identity "spot-7" is quarantined \(chunk 3 differs from two others\): not admitted/);
  assert.throws(() => registry.admit({ worker_name: 'other' } as WorkerCapabilities__Output, 'spot-7'), /quarantined/);
  assert.ok(registry.admit({ worker_name: 'spot-8' } as WorkerCapabilities__Output));
});

test('live() lists workers in join order, or in the order the registry was given (a sweep: idle ones first)', () => {
  const plain = new WorkerRegistry();
  const a = live(plain, 'a');
  const b = live(plain, 'b');
  assert.deepEqual(plain.live().map((w) => w.id), [a.id, b.id]);
  const busy = new Set<string>();
  const ordered = new WorkerRegistry({ order: (ws) => [...ws.filter((w) => !busy.has(w.id)), ...ws.filter((w) => busy.has(w.id))] });
  const x = live(ordered, 'x');
  const y = live(ordered, 'y');
  const z = live(ordered, 'z');
  busy.add(x.id);
  assert.deepEqual(ordered.live().map((w) => w.id), [y.id, z.id, x.id]);
});
