/**
 * Bad input against a real coordinator (serveTraining, what `advclip
 * coordinator` runs) on loopback. Raw clients send malformed, oversized and
 * out-of-protocol messages and get the right gRPC status; evil workers
 * answer tasks with crafted bad results — each refused with its reason, its
 * chunks recomputed by the good worker, each evil worker told to drain and
 * dropped after 3 — and the run ends with the adapter of `advclip train`,
 * bit for bit. Then the CLI: config values out of range are one line on
 * stderr and exit 1. docs/errors.md lists every case.
 */
import assert from 'node:assert/strict';
import { connect as http2Connect } from 'node:http2';
import { join } from 'node:path';
import { test } from 'node:test';
import { status, type ServiceError } from '@grpc/grpc-js';
import { parseFlags } from '../../services/cli/args.ts';
import { coordinatorCommand, coordinatorRunFrom } from '../../services/cli/coordinator.ts';
import { createLogger } from '../../services/protocol/log.ts';
import { serveTraining } from '../../services/run/serve.ts';
import { RUN_SPEC_VERSION } from '../../services/run/spec.ts';
import { workerSetupFrom } from '../../services/run/worker-setup.ts';
import { initBackend } from '../../services/core/backend.ts';
import { hostTensor } from '../../services/core/tensor.ts';
import type { Coordinator } from '../../services/coordinator/coordinator.ts';
import type { CoordinatorClient } from '../../services/protocol/generated/advclip/v1/Coordinator.ts';
import type { CoordinatorMessage__Output } from '../../services/protocol/generated/advclip/v1/CoordinatorMessage.ts';
import type { Task__Output } from '../../services/protocol/generated/advclip/v1/Task.ts';
import type { TaskResult } from '../../services/protocol/generated/advclip/v1/TaskResult.ts';
import type { WorkerMessage } from '../../services/protocol/generated/advclip/v1/WorkerMessage.ts';
import { grpcChannelOptions, GRPC_TRANSPORT_DEFAULTS } from '../../services/protocol/grpc-options.ts';
import { coordinatorClient } from '../../services/protocol/proto-loader.ts';
import { encodeNamedTensor } from '../../services/protocol/serde.ts';
import type { RejectReason } from '../../services/protocol/task-codec.ts';
import { channelCredentials } from '../../services/protocol/tls.ts';
import { Worker } from '../../services/worker/worker.ts';
import { runCliEach } from '../helpers/cli.ts';
import { adapterBytes, quiet, scratch, TINY, trainReference } from './cluster-harness.ts';

const ARGS = [...TINY, '--iters', '10'];

/** Log lines of a logger, parsed. */
function capturingLogger() {
  const lines: Record<string, unknown>[] = [];
  return { lines, log: createLogger({ json: true, write: (l) => lines.push(JSON.parse(l)) }) };
}

const rawClient = (address: string): CoordinatorClient => coordinatorClient(address, channelCredentials({ mode: 'insecure' }, () => undefined), grpcChannelOptions());

const statusOf = (promise: Promise<unknown>): Promise<{ code: number; details: string }> =>
  promise.then(
    () => ({ code: status.OK, details: 'accepted' }),
    (err: ServiceError) => ({ code: err.code, details: err.details }),
  );

function register(c: CoordinatorClient, request: Parameters<CoordinatorClient['Register']>[0]) {
  return new Promise<string>((resolve, reject) => c.Register(request, (err, reply) => (err ? reject(err) : resolve(reply!.worker_id))));
}

/** Opens Work, sends `first` (and more), resolves with the stream's final status. */
function workStream(c: CoordinatorClient, messages: WorkerMessage[]): Promise<{ code: number; details: string }> {
  return new Promise((resolve) => {
    const call = c.Work();
    call.on('data', () => undefined);
    call.on('status', (s) => resolve({ code: s.code, details: s.details }));
    call.on('error', () => undefined);
    for (const m of messages) call.write(m);
  });
}

/** One gRPC call by hand over HTTP/2: `frame` is the whole request body. The grpc-status and message. */
function rawCall(address: string, path: string, frame: Buffer, endAfter = true): Promise<{ code: number; details: string }> {
  return new Promise((resolve, reject) => {
    const session = http2Connect(`http://${address}`);
    session.on('error', reject);
    const req = session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers' });
    let headers: Record<string, unknown> = {};
    const done = () => {
      req.close();
      session.close();
      resolve({ code: Number(headers['grpc-status']), details: decodeURIComponent(String(headers['grpc-message'] ?? '')) });
    };
    // a trailers-only answer carries grpc-status in its headers; otherwise it comes in the trailers
    req.on('response', (h, flags) => {
      headers = h;
      if (flags & 0x1 /* END_STREAM */) done();
    });
    req.on('trailers', (t) => {
      headers = { ...headers, ...t };
      done();
    });
    req.on('data', () => undefined);
    req.on('error', () => undefined);
    req.on('close', () => done());
    req.write(frame);
    if (endAfter) req.end();
  });
}

const grpcFrame = (payload: Buffer, claimedLength = payload.length) => {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(claimedLength, 1);
  return Buffer.concat([head, payload]);
};

// ---- evil workers: crafted results for δ-gradient tasks ----

/** A well-formed δ-round result of zeros (accepted if sent as is: every craft below must break it). */
function deltaResult(task: Task__Output): TaskResult & { chunks: NonNullable<TaskResult['chunks']> } {
  const shape = task.delta?.shape ?? [32, 32, 3];
  const zeros = () => hostTensor(shape, new Float32Array(shape.reduce((a, b) => a * b, 1)));
  return {
    task_id: task.task_id,
    step: task.step,
    round: task.round,
    chunks: task.chunks.map((c) => ({ chunk_index: c.chunk_index, count: c.sample_indices.length, loss_sum: 0, adv_loss_sum: 0, grads: [encodeNamedTensor('delta', zeros())] })),
    timing: { compute_ms: 1, total_ms: 1 },
    shard_tensors: [],
  };
}

interface Craft {
  readonly kind: string;
  readonly reason: RejectReason;
  readonly craft: (task: Task__Output) => TaskResult;
}

const withGrad = (task: Task__Output, mutate: (data: Float32Array) => void): TaskResult => {
  const r = deltaResult(task);
  const t = r.chunks[0].grads![0].tensor!;
  const data = new Float32Array(new Uint8Array(t.data as Buffer).slice().buffer);
  mutate(data);
  r.chunks[0].grads![0].tensor = { ...t, data: Buffer.from(data.buffer) };
  return r;
};

const tensorOf = (r: TaskResult) => r.chunks![0].grads![0].tensor!;

const CRAFTS: Readonly<Record<string, Craft>> = {
  nan: { kind: 'NaN in a gradient', reason: 'non_finite', craft: (t) => withGrad(t, (d) => (d[5] = NaN)) },
  inf: { kind: '+Inf in a gradient', reason: 'non_finite', craft: (t) => withGrad(t, (d) => (d[0] = Infinity)) },
  infLoss: { kind: 'adversarial loss +Inf', reason: 'non_finite', craft: (t) => ({ ...deltaResult(t), chunks: deltaResult(t).chunks.map((c) => ({ ...c, adv_loss_sum: Infinity })) }) },
  cleanInf: { kind: 'clean loss -Inf', reason: 'non_finite', craft: (t) => ({ ...deltaResult(t), chunks: deltaResult(t).chunks.map((c) => ({ ...c, clean_loss_sum: -Infinity })) }) },
  dtype: {
    kind: 'dtype float64',
    reason: 'bad_shape',
    craft: (t) => {
      const r = deltaResult(t);
      const x = tensorOf(r);
      r.chunks[0].grads![0].tensor = { ...x, dtype: 'float64', data: Buffer.alloc((x.data as Buffer).length * 2) };
      return r;
    },
  },
  bytes: {
    kind: 'byte length ≠ shape',
    reason: 'bad_shape',
    craft: (t) => {
      const r = deltaResult(t);
      const x = tensorOf(r);
      r.chunks[0].grads![0].tensor = { ...x, data: (x.data as Buffer).subarray(1) };
      return r;
    },
  },
  shape: {
    kind: 'shape not the round’s',
    reason: 'bad_shape',
    craft: (t) => {
      const r = deltaResult(t);
      const [h, w] = (tensorOf(r).shape as number[]) ?? [32, 32];
      r.chunks[0].grads = [encodeNamedTensor('delta', hostTensor([h, w, 4], new Float32Array(h * w * 4)))];
      return r;
    },
  },
  missing: { kind: 'gradient missing', reason: 'bad_shape', craft: (t) => ({ ...deltaResult(t), chunks: deltaResult(t).chunks.map((c) => ({ ...c, grads: [] })) }) },
  unexpected: {
    kind: 'unexpected tensor',
    reason: 'bad_shape',
    craft: (t) => {
      const r = deltaResult(t);
      r.chunks[0].grads!.push(encodeNamedTensor('lora_A.evil', hostTensor([1], new Float32Array(1))));
      return r;
    },
  },
  notAssigned: { kind: 'chunk not assigned', reason: 'bad_chunks', craft: (t) => ({ ...deltaResult(t), chunks: deltaResult(t).chunks.map((c, i) => (i === 0 ? { ...c, chunk_index: 999 } : c)) }) },
  count: { kind: 'sample count wrong', reason: 'bad_chunks', craft: (t) => ({ ...deltaResult(t), chunks: deltaResult(t).chunks.map((c) => ({ ...c, count: (c.count ?? 0) + 1 })) }) },
  duplicate: {
    kind: 'chunk twice',
    reason: 'bad_chunks',
    craft: (t) => {
      const r = deltaResult(t);
      return { ...r, chunks: [r.chunks[0], r.chunks[0], ...r.chunks.slice(2)] };
    },
  },
  staleRound: { kind: 'stale round', reason: 'stale', craft: (t) => ({ ...deltaResult(t), round: t.round + 1 }) },
  staleStep: { kind: 'stale step', reason: 'stale', craft: (t) => ({ ...deltaResult(t), step: t.step + 1 }) },
};

/** Each evil worker's answers to its δ tasks in order; `unknown` first sends a result for a task id never issued (stale). */
const EVIL_SCRIPTS: readonly (readonly (keyof typeof CRAFTS | 'unknown')[])[] = [
  ['unknown', 'nan', 'staleRound', 'inf', 'dtype'],
  ['bytes', 'shape', 'staleStep', 'missing'],
  ['unexpected', 'notAssigned', 'count'],
  ['infLoss', 'cleanInf', 'duplicate'],
];

interface EvilRun {
  readonly id: string;
  /** reasons the coordinator should log, in order */
  readonly expected: RejectReason[];
  drainReason: string;
  readonly ended: Promise<{ code: number }>;
}

/** Registers, opens Work and answers δ tasks from `script` (other tasks: a TaskError, which is not a bad result). */
async function startEvil(address: string, name: string, script: readonly (keyof typeof CRAFTS | 'unknown')[]): Promise<EvilRun> {
  const c = rawClient(address);
  const id = await register(c, { capabilities: { worker_name: name, backend: 'evil', cores: 1, run_spec_version: RUN_SPEC_VERSION } });
  const call = c.Work();
  const run: EvilRun = {
    id,
    expected: [],
    drainReason: '',
    ended: new Promise((resolve) => call.on('status', (s) => (c.close(), resolve({ code: s.code })))),
  };
  const queue = [...script];
  call.on('error', () => undefined);
  call.on('data', (m: CoordinatorMessage__Output) => {
    if (m.body === 'drain') {
      run.drainReason = m.drain?.reason ?? '';
      call.end();
      return;
    }
    if (m.body !== 'task' || !m.task) return;
    const task = m.task;
    if (task.round_kind === 'DELTA_GRAD' && queue[0] === 'unknown') {
      queue.shift();
      call.write({ result: { ...deltaResult(task), task_id: 'no-such-task' } });
      run.expected.push('stale');
    }
    const next = task.round_kind === 'DELTA_GRAD' ? queue.shift() : undefined;
    if (next && next !== 'unknown') {
      call.write({ result: CRAFTS[next].craft(task) });
      run.expected.push(CRAFTS[next].reason);
    } else {
      call.write({ error: { task_id: task.task_id, step: task.step, round: task.round, code: 'UNAVAILABLE', message: 'evil worker declines' } });
    }
  });
  call.write({ hello: { worker_id: id, adapter_version: 0 } });
  return run;
}

test('a coordinator refuses bad input with the right status, drops evil workers after 3 bad results, and ends with the adapter of advclip train', async () => {
  const tmp = scratch();
  try {
    const reference = await trainReference(ARGS, join(tmp.dir, 'train'));
    const { lines, log } = capturingLogger();
    const wlog = capturingLogger();
    const flags = coordinatorRunFrom(parseFlags(coordinatorCommand, [...ARGS, '--out', join(tmp.dir, 'cluster'), '--listen', '127.0.0.1:0', '--metrics-port', '0', '--insecure']));
    let coordinator!: Coordinator;
    let good: Worker | undefined;
    const wire: Record<string, { code: number; details: string }> = {};
    const evils: EvilRun[] = [];
    let evilsDone: Promise<void> = Promise.resolve();
    try {
      await serveTraining(flags, log, {
        onListening: async (c) => {
          coordinator = c;
          const address = c.address;
          const raw = rawClient(address);
          try {
            // protocol violations: each a status, nothing admitted
            wire.registerNoCapabilities = await statusOf(register(raw, {}));
            wire.registerOtherSpecVersion = await statusOf(register(raw, { capabilities: { worker_name: 'old' } }));
            wire.registerOtherModel = await statusOf(register(raw, { capabilities: { worker_name: 'x', model_sha256: 'f'.repeat(64), run_spec_version: RUN_SPEC_VERSION } }));
            wire.workWithoutHello = await workStream(raw, [{ heartbeat: { worker_id: 'w1-x', seq: 1 } }]);
            wire.helloNotAdmitted = await workStream(raw, [{ hello: { worker_id: 'w1-good-00000000', adapter_version: 0 } }]);
            const admitted = await register(raw, { capabilities: { worker_name: 'empty', run_spec_version: RUN_SPEC_VERSION } });
            wire.emptyMessage = await workStream(raw, [{ hello: { worker_id: admitted, adapter_version: 0 } }, {}]);
            const twice = await register(raw, { capabilities: { worker_name: 'twice', run_spec_version: RUN_SPEC_VERSION } });
            const first = raw.Work();
            first.on('data', () => undefined);
            first.on('error', () => undefined);
            first.write({ hello: { worker_id: twice, adapter_version: 0 } });
            await c.registry.nextEvent();
            wire.secondStream = await workStream(raw, [{ hello: { worker_id: twice, adapter_version: 0 } }]);
            first.end();
            await c.registry.nextEvent();
            wire.unknownAdapterVersion = await statusOf(new Promise((resolve, reject) => raw.GetAdapter({ version: 999 }, (err, r) => (err ? reject(err) : resolve(r)))));
          } finally {
            raw.close();
          }
          // bytes that are not a RegisterRequest; a length prefix above the message limit (no body sent)
          wire.malformedProtobuf = await rawCall(address, '/advclip.v1.Coordinator/Register', grpcFrame(Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01])));
          wire.oversized = await rawCall(address, '/advclip.v1.Coordinator/Register', grpcFrame(Buffer.alloc(0), GRPC_TRANSPORT_DEFAULTS.maxMessageBytes + 1), false);
          wire.unknownMethod = await rawCall(address, '/advclip.v1.Coordinator/Train', grpcFrame(Buffer.alloc(0)));
          // the removed δ-by-version RPC (δ travels inline in each Task) is not served
          wire.deltaVersion = await rawCall(address, '/advclip.v1.Coordinator/GetDelta', grpcFrame(Buffer.alloc(0)));

          const backend = await initBackend();
          good = await Worker.start({
            coordinator: address,
            security: { mode: 'insecure' },
            name: 'good',
            capabilities: { backend: backend.name, device: 'cpu', cores: 1, modelSha256: '', version: 'test' },
            prepare: workerSetupFrom({}, backend, quiet),
            metrics: { port: 0 },
            log: wlog.log,
          });
          // evil workers one after another: the next registers once the last was dropped
          const first = await startEvil(address, 'evil-1', EVIL_SCRIPTS[0]);
          evils.push(first);
          evilsDone = (async () => {
            let current = first;
            for (const script of EVIL_SCRIPTS.slice(1)) {
              await current.ended;
              current = await startEvil(address, `evil-${evils.length + 1}`, script);
              evils.push(current);
            }
            await current.ended;
          })();
          while (c.registry.live().length < 2) await c.registry.nextEvent();
        },
      });
      await evilsDone;
    } finally {
      await good?.close();
    }

    // wire: the right status, a message that says what was wrong
    const expect: Record<string, [status, RegExp]> = {
      registerNoCapabilities: [status.FAILED_PRECONDITION, /without capabilities/],
      registerOtherSpecVersion: [status.FAILED_PRECONDITION, /RegisterRequest\.capabilities\.run_spec_version is 0, the coordinator's run is RunSpec version 1: not admitted/],
      registerOtherModel: [status.FAILED_PRECONDITION, /model .* is not the coordinator's.*not admitted/],
      workWithoutHello: [status.FAILED_PRECONDITION, /first message on Work must be a Hello/],
      helloNotAdmitted: [status.FAILED_PRECONDITION, /was not admitted: call Register first/],
      emptyMessage: [status.FAILED_PRECONDITION, /unexpected empty message/],
      secondStream: [status.FAILED_PRECONDITION, /already has a Work stream/],
      unknownAdapterVersion: [status.NOT_FOUND, /adapter version 999 is not kept/],
      deltaVersion: [status.UNIMPLEMENTED, /./],
      malformedProtobuf: [status.INTERNAL, /deserializ/i],
      oversized: [status.RESOURCE_EXHAUSTED, /larger than max/],
      unknownMethod: [status.UNIMPLEMENTED, /./],
    };
    for (const [name, [code, pattern]] of Object.entries(expect)) {
      assert.equal(wire[name]?.code, code, `${name}: ${JSON.stringify(wire[name])}`);
      assert.match(wire[name].details, pattern, name);
    }

    // every crafted result refused with its reason, in order; 3 bad ones drop the worker
    assert.equal(evils.length, EVIL_SCRIPTS.length, 'every evil worker got to run');
    const rejected = (id: string) => lines.filter((l) => l.msg === `rejected a result of worker ${id}`).map((l) => l.reason);
    for (const evil of evils) {
      assert.deepEqual(rejected(evil.id), evil.expected, `${evil.id}: reasons`);
      assert.equal(evil.expected.filter((r) => r !== 'stale').length, 3, `${evil.id} sent 3 bad results`);
      assert.match(evil.drainReason, /^excluded after 3 bad results \(/, `${evil.id} was told to drain`);
      assert.ok(lines.some((l) => l.level === 'warn' && l.msg === `worker ${evil.id} lost: ${evil.drainReason}`), `${evil.id}: exclusion logged`);
      assert.equal((await evil.ended).code, status.OK);
    }
    const tried = evils.reduce((n, e) => n + e.expected.length, 0);
    assert.equal(tried, 15);
    const metrics = await coordinator.metricsRegistry.getMetricsAsJSON();
    const value = (name: string) => metrics.find((m) => m.name === name)?.values ?? [];
    assert.equal(value('advclip_workers_excluded_total')[0]?.value, EVIL_SCRIPTS.length);
    const byReason = Object.fromEntries(value('advclip_rejected_results_total').map((v) => [v.labels.reason, v.value]));
    assert.deepEqual(byReason, { stale: 3, non_finite: 4, bad_shape: 5, bad_chunks: 3 });

    // nothing lost: the good worker recomputed every refused chunk; the adapter is advclip train's
    assert.ok(adapterBytes(join(tmp.dir, 'cluster')).equals(reference), 'the adapter differs from advclip train');
    assert.ok(lines.some((l) => l.level === 'warn' && /WITHOUT TLS \(--insecure\)/.test(String(l.msg))), 'the coordinator warns about --insecure');
    assert.ok(wlog.lines.some((l) => l.level === 'warn' && /WITHOUT TLS \(--insecure\)/.test(String(l.msg))), 'the worker warns about --insecure');
  } finally {
    tmp.done();
  }
});

test('config values out of range: one line on stderr, exit 1, for train, coordinator and cluster', async (t) => {
  const base = ['--model', 'test/fixtures/tiny-clip-f32', '--data', 'data/shapes-colours', '--out', '/nonexistent/never-written'];
  const cases: [string[], RegExp][] = [
    [['train', ...base, '--epsilon', '-1'], /--epsilon/],
    [['train', ...base, '--epsilon=-1'], /--epsilon must be ≥ 0, got -1/],
    [['train', ...base, '--epsilon', '-1/255'], /--epsilon must be ≥ 0/],
    [['train', ...base, '--epsilon', '2'], /--epsilon must be in \[0, 1\], got 2/],
    [['train', ...base, '--shots', '0'], /--shots must be ≥ 1, got 0/],
    [['train', ...base, '--lora-rank', '0'], /--lora-rank must be a positive integer, got 0/],
    [['train', ...base, '--tau=-1'], /--tau must be a non-negative integer, got -1/],
    [['train', ...base, '--tau', '1.5'], /--tau must be an integer, got "1.5"/],
    [['train', ...base, '--batch-size', '0'], /--batch-size must be a positive integer/],
    [['train', ...base, '--lora-dropout', '1'], /--lora-dropout must be in \[0, 1\), got 1/],
    [['coordinator', ...base, '--insecure', '--min-workers', '0'], /--min-workers must be ≥ 1, got 0/],
    [['cluster', ...base, '--workers', '0'], /--workers must be ≥ 1, got 0/],
  ];
  const results = await runCliEach(cases.map(([args]) => args), { signal: t.signal });
  results.forEach((r, i) => {
    const [args, pattern] = cases[i];
    assert.equal(r.code, 1, `${args.join(' ')}: exit ${r.code}\n${r.stderr}`);
    const out = r.stderr.trim().split('\n');
    assert.equal(out.length, 1, `${args.join(' ')}: one line, got\n${r.stderr}`);
    const line = JSON.parse(out[0]);
    assert.equal(line.level, 'error');
    assert.equal(line.code, 'INVALID_ARGUMENT');
    assert.match(line.msg, pattern, args.join(' '));
    assert.equal(r.stdout, '');
  });
});
