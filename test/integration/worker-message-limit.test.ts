/**
 * A worker's gRPC message limit is sized from the run's shapes once it knows
 * them (RegisterReply.run_spec), as the coordinator sizes its own, not the
 * 256 MiB default: a stand-in coordinator admits a real worker to the tiny
 * fixture's run, sends it a Task just inside that limit (read, and answered
 * with a TaskError: its δ has the wrong shape), then one just above it. The
 * worker refuses the second with RESOURCE_EXHAUSTED naming the limit, logs
 * it, and stops: `done` rejects with that error.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Server, ServerCredentials, type ServerDuplexStream } from '@grpc/grpc-js';
import { initBackend } from '../../services/core/backend.ts';
import { AdvclipError } from '../../services/core/errors.ts';
import { textChunks } from '../../services/core/shard.ts';
import { modelSha256, trainSetSha256 } from '../../services/io/model-hash.ts';
import type { CoordinatorMessage } from '../../services/protocol/generated/advclip/v1/CoordinatorMessage.ts';
import type { CoordinatorHandlers } from '../../services/protocol/generated/advclip/v1/Coordinator.ts';
import type { TaskError__Output } from '../../services/protocol/generated/advclip/v1/TaskError.ts';
import type { WorkerMessage__Output } from '../../services/protocol/generated/advclip/v1/WorkerMessage.ts';
import { GRPC_TRANSPORT_DEFAULTS, grpcServerOptions } from '../../services/protocol/grpc-options.ts';
import { createLogger } from '../../services/protocol/log.ts';
import { coordinatorService } from '../../services/protocol/proto-loader.ts';
import { maxMessageBytes, roundShapes } from '../../services/protocol/task-codec.ts';
import { prepareRun } from '../../services/run/prepare.ts';
import { parseRunSpec } from '../../services/run/spec.ts';
import { encodeRunSpec } from '../../services/run/spec-wire.ts';
import { workerSetupFrom } from '../../services/run/worker-setup.ts';
import { Worker } from '../../services/worker/worker.ts';
import { quiet } from './cluster-harness.ts';

/** A Task for one sample whose δ carries `bytes` bytes. */
const taskOf = (id: string, bytes: number): CoordinatorMessage => ({
  task: {
    task_id: id,
    step: 0,
    round: 0,
    round_kind: 'DELTA_GRAD',
    adapter_version: 0,
    adapter_sha256: 'a'.repeat(64),
    delta: { shape: [bytes / 4], dtype: 'float32', data: Buffer.alloc(bytes) },
    chunks: [{ chunk_index: 0, sample_indices: [0] }],
  },
});

test('a message above the run-sized limit is refused by the worker, which reports it and stops', async () => {
  const backend = await initBackend();
  const spec = parseRunSpec({ model: 'test/fixtures/tiny-clip-f32', data: { root: 'data/shapes-colours' }, shots: 2, train: { iters: 3, batchSize: 8, chunkSize: 2 } });
  const prepared = await prepareRun(spec, backend, quiet);
  const runSpec = encodeRunSpec({ spec, modelSha256: await modelSha256(prepared.dir.files), trainSetSha256: trainSetSha256(prepared.dataset.root, prepared.trainSet) });
  const classes = prepared.dataset.classNames.length;
  const shapes = roundShapes(prepared.dir.config, prepared.initial.sites, spec.train.lora.rank, classes);
  prepared.model.dispose();
  const limit = maxMessageBytes(shapes, { image: 4, text: textChunks(classes).length, samples: 8 });

  const taskErrors: TaskError__Output[] = [];
  const server = new Server(grpcServerOptions());
  const handlers: CoordinatorHandlers = {
    Register: (_call, callback) => callback(null, { worker_id: 'w-limit', heartbeat_interval_ms: 60_000, run_spec: runSpec, nats_url: '', adapter_version: 0 }),
    Work: (call: ServerDuplexStream<WorkerMessage__Output, CoordinatorMessage>) => {
      call.on('data', (m: WorkerMessage__Output) => {
        if (m.body === 'hello') call.write(taskOf('inside', limit - 4096));
        if (m.body === 'error' && m.error) {
          taskErrors.push(m.error);
          call.write(taskOf('above', limit + 4096));
        }
      });
      call.on('error', () => undefined);
    },
    GetAdapter: (_call, callback) => callback({ code: 12, details: 'not served here' }),
    GetRun: (_call, callback) => callback({ code: 12, details: 'not served here' }),
  };
  server.addService(coordinatorService(), handlers);
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
  const lines: Record<string, unknown>[] = [];
  let worker: Worker | undefined;
  try {
    worker = await Worker.start({
      coordinator: `127.0.0.1:${port}`,
      security: { mode: 'insecure' },
      name: 'limit',
      capabilities: { backend: backend.name, device: 'cpu', cores: 1, modelSha256: '', version: 'test' },
      prepare: workerSetupFrom({}, backend, quiet),
      metrics: { port: 0 },
      log: createLogger({ json: true, write: (l) => lines.push(JSON.parse(l)) }),
    });
    assert.equal(worker.maxMessageBytes, limit, 'the limit is the run-sized one');
    assert.ok(limit < GRPC_TRANSPORT_DEFAULTS.maxMessageBytes / 64, `${limit} bytes: far below the 256 MiB default`);

    const refused = new RegExp(`the coordinator sent a message above this worker's limit of ${limit} bytes`);
    await assert.rejects(worker.done, (e: unknown) => e instanceof AdvclipError && e.code === 'RESOURCE_EXHAUSTED' && refused.test(e.message));
    assert.deepEqual(
      taskErrors.map((e) => [e.task_id, e.code]),
      [['inside', 'INVALID_ARGUMENT']],
      'the Task inside the limit was read (and refused for its δ shape)',
    );
    assert.equal(worker.state, 'stopped');
    assert.ok(lines.some((l) => l.level === 'error' && refused.test(String(l.msg))), 'the refusal is logged');
  } finally {
    await worker?.close();
    server.forceShutdown();
  }
});
