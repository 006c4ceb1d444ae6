import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AdvclipError } from '../../../services/core/errors.ts';
import {
  GRPC_TRANSPORT_DEFAULTS,
  grpcChannelOptions,
  grpcServerOptions,
  REGISTER_MAX_MESSAGE_BYTES,
  resolveGrpcTransport,
} from '../../../services/protocol/grpc-options.ts';
import { coordinatorService } from '../../../services/protocol/proto-loader.ts';
import { RUN_DEFAULTS } from '../../../services/run/spec.ts';
import { encodeRunSpec } from '../../../services/run/spec-wire.ts';

test('both ends raise the message limit to the same configured size (default 256 MiB)', () => {
  assert.equal(GRPC_TRANSPORT_DEFAULTS.maxMessageBytes, 256 * 1024 * 1024);
  for (const options of [grpcChannelOptions(), grpcServerOptions()]) {
    assert.equal(options['grpc.max_send_message_length'], 256 * 1024 * 1024);
    assert.equal(options['grpc.max_receive_message_length'], 256 * 1024 * 1024);
  }
  assert.ok((grpcChannelOptions()['grpc.keepalive_time_ms'] as number) > 0, 'the worker pings to find a dead coordinator');
  assert.ok((grpcChannelOptions()['grpc.keepalive_timeout_ms'] as number) >= 120_000, 'a ping unanswered while the worker computes does not drop the stream');
  assert.equal(grpcServerOptions()['grpc.keepalive_time_ms'], undefined, 'the coordinator does not ping: a computing worker cannot answer');
  const small = { maxMessageBytes: 1 << 20 };
  assert.equal(grpcChannelOptions(small)['grpc.max_receive_message_length'], 1 << 20);
  assert.equal(grpcServerOptions(small)['grpc.max_send_message_length'], 1 << 20);
});

test('the resolved config is frozen and out-of-range values are refused', () => {
  assert.ok(Object.isFrozen(resolveGrpcTransport({ keepaliveTimeMs: 5_000 })));
  assert.equal(resolveGrpcTransport({ keepaliveTimeMs: undefined }).keepaliveTimeMs, GRPC_TRANSPORT_DEFAULTS.keepaliveTimeMs);
  for (const bad of [{ maxMessageBytes: 0 }, { maxMessageBytes: 2 ** 31 }, { keepaliveTimeoutMs: 1.5 }, { keepaliveTimeMs: -1 }]) {
    assert.throws(() => resolveGrpcTransport(bad), (e: unknown) => e instanceof AdvclipError && e.code === 'INVALID_ARGUMENT');
  }
});

test("a worker's limit while it registers holds a RegisterReply with the run's RunSpec", () => {
  const reply = coordinatorService().Register.responseSerialize({
    worker_id: 'w1-00000000',
    heartbeat_interval_ms: 2_000,
    run_spec: encodeRunSpec({ spec: RUN_DEFAULTS, modelSha256: 'f'.repeat(64), trainSetSha256: 'f'.repeat(64) }),
    nats_url: 'nats://127.0.0.1:4222',
  });
  assert.ok(reply.length < REGISTER_MAX_MESSAGE_BYTES / 100, `${reply.length} bytes`);
});
