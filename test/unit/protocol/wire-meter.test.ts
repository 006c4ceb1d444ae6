import assert from 'node:assert/strict';
import { test } from 'node:test';
import { coordinatorService } from '../../../services/protocol/proto-loader.ts';
import { meteredServerService, type WireMessage } from '../../../services/protocol/wire-meter.ts';

const plain = coordinatorService();

test('a metered service sends and receives the same bytes as the plain one, and counts each message with its size', () => {
  const seen: WireMessage[] = [];
  const metered = meteredServerService(plain, (m) => seen.push(m));

  const task = { task: { task_id: '0.0.1', step: 3, round: 1, round_kind: 'DELTA_GRAD' as const, chunks: [{ chunk_index: 0, sample_indices: [4, 5] }] } };
  const out = metered.Work.responseSerialize(task);
  assert.ok(out.equals(plain.Work.responseSerialize(task)));

  const heartbeat = plain.Work.requestSerialize({ heartbeat: { worker_id: 'w1', seq: 7 } });
  assert.deepEqual(metered.Work.requestDeserialize(heartbeat), plain.Work.requestDeserialize(heartbeat));

  const blob = { version: 2, sha256: 'ab', safetensors: Buffer.alloc(1000) };
  const adapter = metered.GetAdapter.responseSerialize(blob);
  metered.GetAdapter.requestDeserialize(plain.GetAdapter.requestSerialize({ version: 2 }));

  assert.deepEqual(seen, [
    { direction: 'sent', message: 'task', bytes: out.byteLength },
    { direction: 'received', message: 'heartbeat', bytes: heartbeat.byteLength },
    { direction: 'sent', message: 'get_adapter', bytes: adapter.byteLength },
    { direction: 'received', message: 'get_adapter', bytes: 2 },
  ]);
  assert.ok(adapter.byteLength > 1000, 'the blob is in the count');
});

test('metering copies the definition: the plain service is left as it was', () => {
  const before = plain.Work.responseSerialize;
  meteredServerService(plain, () => assert.fail('the plain service counted'));
  assert.equal(plain.Work.responseSerialize, before);
  plain.Work.responseSerialize({ drain: { reason: 'x' } });
});
