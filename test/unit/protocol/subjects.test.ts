import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AdvclipError } from '../../../services/core/errors.ts';
import { EventKinds, subjectsFor } from '../../../services/protocol/subjects.ts';

test('default names', () => {
  const s = subjectsFor();
  assert.equal(s.adapterKvBucket, 'advclip_adapters');
  assert.equal(s.latestAdapterKey, 'adapter.latest');
  assert.equal(s.adapterObjectBucket, 'advclip_adapter_blobs');
  assert.equal(s.adapterObject(12), 'adapter-12');
  assert.equal(s.event('worker.joined'), 'advclip.events.worker.joined');
  assert.equal(s.event('worker.lost'), 'advclip.events.worker.lost');
  assert.equal(s.event('step'), 'advclip.events.step');
  assert.equal(s.event('checkpoint'), 'advclip.events.checkpoint');
  assert.equal(s.allEvents, 'advclip.events.>');
});

test('a cluster name keeps clusters on one server apart', () => {
  const a = subjectsFor('run-a');
  const b = subjectsFor('run_b');
  assert.equal(a.adapterKvBucket, 'advclip_run-a_adapters');
  assert.equal(a.adapterObjectBucket, 'advclip_run-a_adapter_blobs');
  assert.equal(a.event('step'), 'advclip.run-a.events.step');
  assert.notEqual(a.allEvents, b.allEvents);
  for (const kind of EventKinds) assert.notEqual(a.event(kind), b.event(kind));
});

test('bucket names stay within [A-Za-z0-9_-] and subjects have no empty tokens', () => {
  for (const s of [subjectsFor(), subjectsFor('x'), subjectsFor('A-b_9')]) {
    assert.match(s.adapterKvBucket, /^[A-Za-z0-9_-]+$/);
    assert.match(s.adapterObjectBucket, /^[A-Za-z0-9_-]+$/);
    for (const kind of EventKinds) assert.ok(s.event(kind).split('.').every((t) => t.length > 0));
  }
});

test('cluster names that would break a bucket or subject are refused', () => {
  for (const bad of ['a.b', 'a b', 'a*', '>', 'x'.repeat(65), 'é']) {
    assert.throws(() => subjectsFor(bad), (e: unknown) => e instanceof AdvclipError && e.code === 'INVALID_ARGUMENT');
  }
});

test('object names parse back to versions; other names do not', () => {
  const s = subjectsFor();
  assert.equal(s.versionOfAdapterObject(s.adapterObject(7)), 7);
  for (const other of ['adapter-', 'adapter-07', 'adapter-1.5', 'x-3', 'adapter-1x']) {
    assert.equal(s.versionOfAdapterObject(other), undefined);
  }
});
