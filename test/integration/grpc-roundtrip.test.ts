/**
 * The wire contract end to end over loopback gRPC: a tiny in-test
 * coordinator serves the Work stream; an in-test worker answers each Task
 * with a fake compute callback. Tensors must survive bit for bit.
 *
 * These handlers are the test's own: what travels is checked here, not what
 * the real coordinator decides. Its admission, refusals and limits are
 * tested against services/coordinator/server.ts in bad-input.test.ts and
 * security.test.ts (docs/errors.md cites those, not this file).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Server, type ServerDuplexStream } from '@grpc/grpc-js';
import { AdvclipError } from '../../services/core/errors.ts';
import { hostTensor, type HostTensor } from '../../services/core/tensor.ts';
import type { CoordinatorClient, CoordinatorHandlers } from '../../services/protocol/generated/advclip/v1/Coordinator.ts';
import type { CoordinatorMessage, CoordinatorMessage__Output } from '../../services/protocol/generated/advclip/v1/CoordinatorMessage.ts';
import type { RegisterReply__Output } from '../../services/protocol/generated/advclip/v1/RegisterReply.ts';
import type { Task__Output } from '../../services/protocol/generated/advclip/v1/Task.ts';
import type { TaskResult, TaskResult__Output } from '../../services/protocol/generated/advclip/v1/TaskResult.ts';
import type { WorkerMessage, WorkerMessage__Output } from '../../services/protocol/generated/advclip/v1/WorkerMessage.ts';
import { grpcChannelOptions, grpcServerOptions } from '../../services/protocol/grpc-options.ts';
import { fromGrpcError, toGrpcError } from '../../services/protocol/grpc-status.ts';
import { coordinatorClient, coordinatorService } from '../../services/protocol/proto-loader.ts';
import { decodeNamedTensors, decodeTensor, encodeNamedTensor, encodeTensor } from '../../services/protocol/serde.ts';
import { channelCredentials, serverCredentials } from '../../services/protocol/tls.ts';

const SMALL_LIMIT = 32 * 1024 * 1024;
const noLog = () => undefined;

type WorkCall = ServerDuplexStream<WorkerMessage__Output, CoordinatorMessage>;
let server: Server;
let address: string;
/** The test drives the coordinator side of the current Work stream through this. */
let workCalls: ((call: WorkCall) => void)[] = [];

before(async () => {
  server = new Server(grpcServerOptions({ maxMessageBytes: SMALL_LIMIT }));
  const handlers: CoordinatorHandlers = {
    Register: (call, callback) => {
      if (call.request.cluster_token !== 'token') {
        callback(toGrpcError(new AdvclipError('FAILED_PRECONDITION', 'wrong cluster token: not admitted')));
        return;
      }
      callback(null, { worker_id: `w-${call.request.capabilities?.worker_name}`, heartbeat_interval_ms: 1000, run_spec: { spec_version: 1, template: 'a {}', train: { seed: 3 } } });
    },
    Work: (call) => workCalls.shift()!(call),
    GetAdapter: (call, callback) => {
      // version 0 ("the newest"): a plain Error, as a bug in a handler throws
      if (call.request.version === 0) return callback(toGrpcError(new Error('no adapter store in this test')));
      const size = call.request.version * 1024 * 1024;
      callback(null, { version: call.request.version, sha256: '', safetensors: Buffer.alloc(size, 7) });
    },
    GetRun: (_call, callback) => callback(toGrpcError(new AdvclipError('NOT_FOUND', 'no sweep in this test'))),
  };
  server.addService(coordinatorService(), handlers);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', serverCredentials({ mode: 'insecure' }, noLog), (err, p) => (err ? reject(err) : resolve(p))),
  );
  address = `127.0.0.1:${port}`;
});

after(() => server?.forceShutdown());

function client(maxMessageBytes = SMALL_LIMIT): CoordinatorClient {
  return coordinatorClient(address, channelCredentials({ mode: 'insecure' }, noLog), grpcChannelOptions({ maxMessageBytes }));
}

/** Fake compute: per chunk, "delta" = (Σ sample indices) · delta, and loss sums from the indices. */
function fakeCompute(task: Task__Output): TaskResult {
  const delta = decodeTensor(task.delta, { name: `task ${task.task_id} delta`, expectShape: [3, 8, 8] });
  return {
    task_id: task.task_id,
    step: task.step,
    round: task.round,
    chunks: task.chunks.map((chunk) => {
      const weight = chunk.sample_indices.reduce((a, b) => a + b, 0);
      return {
        chunk_index: chunk.chunk_index,
        count: chunk.sample_indices.length,
        clean_loss_sum: weight / 3,
        adv_loss_sum: weight / 7,
        grads: [encodeNamedTensor('delta', hostTensor(delta.shape, delta.data.map((v) => v * weight)))],
      };
    }),
    timing: { compute_ms: 1.5, total_ms: 2 },
    shard_tensors: [encodeNamedTensor('delta', delta)], // as LOCAL_DELTA returns its delta
  };
}

/** The worker side of Work: Hello, then answer tasks until the coordinator ends the stream. */
function runWorker(c: CoordinatorClient, compute: (task: Task__Output) => TaskResult): Promise<void> {
  return new Promise((resolve, reject) => {
    const stream = c.Work();
    stream.write({ hello: { worker_id: 'w-1', adapter_version: 0 } } satisfies WorkerMessage);
    stream.on('data', (message: CoordinatorMessage__Output) => {
      if (message.body === 'task') {
        try {
          stream.write({ result: compute(message.task!) });
        } catch (err) {
          const e = err as AdvclipError;
          stream.write({ error: { task_id: message.task!.task_id, step: message.task!.step, round: message.task!.round, code: e.code, message: e.message } });
        }
      } else if (message.body === 'drain') {
        stream.end();
      }
    });
    stream.on('error', (err) => reject(fromGrpcError(err, 'Work')));
    stream.on('end', () => resolve());
  });
}

const bits = (t: HostTensor) => new Uint32Array(t.data.buffer, t.data.byteOffset, t.data.length);

test('Register over the wire: the reply and its RunSpec arrive as sent; a handler’s refusal arrives as the same AdvclipError code', async () => {
  const c = client();
  try {
    const register = (token: string) =>
      new Promise<RegisterReply__Output>((resolve, reject) =>
        c.Register({ capabilities: { worker_name: 'pod-1', backend: 'cpu', cores: 2 }, cluster_token: token }, (err, reply) =>
          err || !reply ? reject(fromGrpcError(err, 'Register')) : resolve(reply),
        ),
      );
    const { run_spec, ...reply } = await register('token');
    assert.equal(run_spec?.spec_version, 1);
    assert.equal(run_spec?.template, 'a {}');
    assert.equal(run_spec?.train?.seed, 3);
    assert.equal(run_spec?.train?.lora, null, 'an unset message field stays null');
    assert.deepEqual(reply, {
      worker_id: 'w-pod-1',
      heartbeat_interval_ms: 1000,
      nats_url: '',
      nats_cluster: '',
      adapter_version: 0,
      multi_run: false,
    });
    await assert.rejects(register('bad'), (e: unknown) => e instanceof AdvclipError && e.code === 'FAILED_PRECONDITION' && /Register: wrong cluster token/.test(e.message));
  } finally {
    c.close();
  }
});

test('Work: a Task with a delta tensor goes out, a TaskResult with exact gradient sums comes back', async () => {
  const delta = hostTensor([3, 8, 8], Float32Array.from({ length: 192 }, (_, i) => Math.fround(Math.sin(i) * 1e-3)));
  new Uint32Array(delta.data.buffer)[5] = 0x7fa00001; // NaN with a payload must survive too
  const chunks = [
    { chunk_index: 2, sample_indices: [8, 9, 10, 11] },
    { chunk_index: 0, sample_indices: [0, 1, 2, 3] },
  ];
  const received = new Promise<{ hello: WorkerMessage__Output; result: TaskResult__Output }>((resolve, reject) => {
    workCalls.push((call) => {
      let hello: WorkerMessage__Output | undefined;
      call.on('data', (message: WorkerMessage__Output) => {
        if (message.body === 'hello') {
          hello = message;
          call.write({
            task: {
              task_id: '7/1/a',
              step: 7,
              round: 1,
              round_kind: 'DELTA_GRAD',
              adapter_version: 7,
              adapter_sha256: 'ab'.repeat(32),
              delta: encodeTensor(delta),
              chunks,
              seeds: { seed: 1 },
              deadline_ms: 5000,
            },
          } satisfies CoordinatorMessage);
        } else if (message.body === 'result') {
          call.write({ drain: { reason: 'test over' } });
          call.end();
          resolve({ hello: hello!, result: message.result! });
        }
      });
      call.on('error', reject);
    });
  });
  const c = client();
  try {
    await runWorker(c, fakeCompute);
    const { hello, result } = await received;
    assert.equal(hello.hello?.worker_id, 'w-1');
    assert.equal(result.task_id, '7/1/a');
    assert.equal(result.step, 7);
    assert.equal(result.round, 1);
    assert.equal(result.timing?.compute_ms, 1.5);
    assert.deepEqual(result.chunks.map((r) => [r.chunk_index, r.count, r.clean_loss_sum, r.adv_loss_sum]), [
      [2, 4, 38 / 3, 38 / 7],
      [0, 4, 6 / 3, 6 / 7],
    ]);
    const echoed = decodeNamedTensors(result.shard_tensors, { context: 'shard' }).get('delta')!;
    assert.deepEqual(bits(echoed), bits(delta), 'the delta survives both directions bit for bit (NaN payload included)');
    for (const chunk of result.chunks) {
      const weight = chunks.find((k) => k.chunk_index === chunk.chunk_index)!.sample_indices.reduce((a, b) => a + b, 0);
      const grads = decodeNamedTensors(chunk.grads, { context: `chunk ${chunk.chunk_index}`, expectShapes: new Map([['delta', [3, 8, 8]]]) });
      const expected = hostTensor(delta.shape, delta.data.map((v) => v * weight));
      assert.deepEqual(bits(grads.get('delta')!), bits(expected), 'gradient bytes survive exactly');
    }
  } finally {
    c.close();
  }
});

test('Work: a compute failure travels back as a TaskError with its AdvclipError code', async () => {
  const received = new Promise<WorkerMessage__Output>((resolve) => {
    workCalls.push((call) => {
      call.on('data', (message: WorkerMessage__Output) => {
        if (message.body === 'hello') {
          const bad = { ...encodeTensor(hostTensor([2], new Float32Array(2))), dtype: 'float64' };
          call.write({ task: { task_id: 'bad', step: 1, round: 0, round_kind: 'LORA_GRAD', delta: bad, chunks: [] } });
        } else {
          call.end();
          resolve(message);
        }
      });
    });
  });
  const c = client();
  try {
    await runWorker(c, fakeCompute);
    const message = await received;
    assert.equal(message.body, 'error');
    assert.equal(message.error?.code, 'INVALID_ARGUMENT');
    assert.match(message.error?.message ?? '', /"task bad delta" has dtype "float64"/);
  } finally {
    c.close();
  }
});

test('GetAdapter: messages above gRPC default 4 MiB pass; above the configured limit they are RESOURCE_EXHAUSTED', async () => {
  const c = client();
  const getAdapter = (version: number) =>
    new Promise<number>((resolve, reject) =>
      c.GetAdapter({ version }, (err, reply) => (err ? reject(fromGrpcError(err, `GetAdapter(${version})`)) : resolve(reply!.safetensors.length))),
    );
  try {
    assert.equal(await getAdapter(16), 16 * 1024 * 1024);
    await assert.rejects(getAdapter(40), (e: unknown) => e instanceof AdvclipError && e.code === 'RESOURCE_EXHAUSTED');
  } finally {
    c.close();
  }
});

test('a server-side bug surfaces as INTERNAL, not a hang', async () => {
  const c = client();
  try {
    await assert.rejects(
      new Promise((resolve, reject) => c.GetAdapter({ version: 0 }, (err, reply) => (err ? reject(fromGrpcError(err, 'GetAdapter')) : resolve(reply)))),
      (e: unknown) => e instanceof AdvclipError && e.code === 'INTERNAL' && /no adapter store/.test(e.message),
    );
  } finally {
    c.close();
  }
});
