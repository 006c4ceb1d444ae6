/**
 * Fuzz against the live coordinator port (issue 16): a real coordinator
 * (serveTraining, what `advclip coordinator` runs) trains with two honest
 * workers while
 *  (a) raw HTTP/2 clients call Register, Work and GetAdapter with valid
 *      messages mutated into malformed gRPC frames — bit flips, truncated
 *      bodies, declared lengths too short, too long or huge, a compressed
 *      flag without an encoding, two messages on a unary call, protobuf
 *      fields of the wrong wire type, random bytes — and
 *  (b) a rogue worker speaking the protocol answers its tasks with results
 *      for an unknown task id, the wrong step or round, wrong shapes or
 *      byte lengths, NaN or infinite values, chunks not assigned, twice or
 *      miscounted, missing tensors, and sends each answer twice; when it is
 *      excluded it registers again under a new name.
 * Every raw case ends with an error status (OK only when the bytes were one
 * well-formed message of the method), every rogue answer is refused and
 * counted in advclip_rejected_results_total by the reason its mutation
 * implies, the coordinator keeps serving, and the run ends with the adapter
 * of `advclip train`, bit for bit: no step lost. The counts are printed.
 *
 *   FUZZ_CASES=20000 node --import tsx --test test/integration/fuzz-live-port.test.ts
 */
import assert from 'node:assert/strict';
import { connect as http2Connect, type ClientHttp2Session } from 'node:http2';
import { join } from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { status, type ServiceError } from '@grpc/grpc-js';
import { parseFlags } from '../../services/cli/args.ts';
import { coordinatorCommand, coordinatorRunFrom } from '../../services/cli/coordinator.ts';
import type { Coordinator } from '../../services/coordinator/coordinator.ts';
import { initBackend } from '../../services/core/backend.ts';
import type { ChunkResult, RoundResult } from '../../services/core/shard.ts';
import type { CoordinatorClient } from '../../services/protocol/generated/advclip/v1/Coordinator.ts';
import type { CoordinatorMessage__Output } from '../../services/protocol/generated/advclip/v1/CoordinatorMessage.ts';
import type { RegisterReply__Output } from '../../services/protocol/generated/advclip/v1/RegisterReply.ts';
import type { RunSpec__Output } from '../../services/protocol/generated/advclip/v1/RunSpec.ts';
import type { TaskResult } from '../../services/protocol/generated/advclip/v1/TaskResult.ts';
import { grpcChannelOptions } from '../../services/protocol/grpc-options.ts';
import { CoordinatorMetricNames } from '../../services/protocol/metrics.ts';
import { coordinatorClient, coordinatorService } from '../../services/protocol/proto-loader.ts';
import { decodeTask, DELTA_KEY, encodeResult, TEXT_FEATURES_KEY, type RejectReason, type RoundShapes } from '../../services/protocol/task-codec.ts';
import { channelCredentials } from '../../services/protocol/tls.ts';
import { serveTraining } from '../../services/run/serve.ts';
import { RUN_SPEC_VERSION } from '../../services/run/spec.ts';
import { workerSetupFrom } from '../../services/run/worker-setup.ts';
import type { Worker } from '../../services/worker/worker.ts';
import { adapterBytes, quiet, scratch, startWorker, TINY, trainReference } from './cluster-harness.ts';

const CASES = Number(process.env.FUZZ_CASES ?? 400);
const SEED = Number(process.env.FUZZ_SEED ?? 16);
/** Rogue incarnations: each is excluded after 3 bad results; fewer than the executor's 8 attempts at a chunk, so no step can fail. */
const ROGUES = 6;
const ITERS = 12;
const ARGS = [...TINY, '--iters', String(ITERS)];
/** Raw calls in flight at once. */
const PARALLEL = 8;

class Tally {
  readonly counts = new Map<string, number>();
  add(key: string, n = 1): void {
    this.counts.set(key, (this.counts.get(key) ?? 0) + n);
  }
  get total(): number {
    return [...this.counts.values()].reduce((a, b) => a + b, 0);
  }
  toString(): string {
    return [...this.counts].sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, v]) => `${k} ${v}`).join(', ');
  }
}

// ---- (a) raw gRPC frames over HTTP/2 ----

const service = coordinatorService();
const METHODS = {
  Register: { path: '/advclip.v1.Coordinator/Register', unary: true, valid: () => service.Register.requestSerialize({ capabilities: { worker_name: 'fuzz', backend: 'x', run_spec_version: RUN_SPEC_VERSION }, cluster_token: '' }), decode: (b: Buffer) => service.Register.requestDeserialize(b) },
  GetAdapter: { path: '/advclip.v1.Coordinator/GetAdapter', unary: true, valid: () => service.GetAdapter.requestSerialize({ version: 0 }), decode: (b: Buffer) => service.GetAdapter.requestDeserialize(b) },
  Work: { path: '/advclip.v1.Coordinator/Work', unary: false, valid: () => service.Work.requestSerialize({ hello: { worker_id: 'fuzz-not-admitted', adapter_version: 0 } }), decode: (b: Buffer) => service.Work.requestDeserialize(b) },
} as const;
type Method = keyof typeof METHODS;

const frame = (payload: Buffer, declared = payload.length, compressed = false): Buffer => {
  const head = Buffer.alloc(5);
  head[0] = compressed ? 1 : 0;
  head.writeUInt32BE(declared >>> 0, 1);
  return Buffer.concat([head, payload]);
};

/** A protobuf field by hand: any field number and wire type (3, 4, 6, 7 are invalid or deprecated), any bytes. */
const rawField = fc.record({ field: fc.integer({ min: 1, max: 12 }), wire: fc.integer({ min: 0, max: 7 }), bytes: fc.uint8Array({ maxLength: 12 }) }).map(({ field, wire, bytes }) => {
  // field ≤ 12: the tag is one varint byte
  const body = wire === 2 ? Buffer.concat([Buffer.from([bytes.length]), bytes]) : Buffer.from(bytes);
  return Buffer.concat([Buffer.from([(field << 3) | wire]), body]);
});

interface RawCase {
  readonly method: Method;
  readonly kind: string;
  readonly body: Buffer;
}

/** The complete frames of a body, as a server reads them (a partial frame at the end of the stream is dropped; grpc-js ignores the compressed flag without an encoding). */
function completeFrames(body: Buffer): Buffer[] {
  const frames: Buffer[] = [];
  for (let at = 0; at + 5 <= body.length; ) {
    const length = body.readUInt32BE(at + 1);
    if (at + 5 + length > body.length) break;
    frames.push(body.subarray(at + 5, at + 5 + length));
    at += 5 + length;
  }
  return frames;
}

const decodes = (method: Method, payload: Buffer): boolean => {
  try {
    METHODS[method].decode(payload);
    return true;
  } catch {
    return false;
  }
};

/**
 * When an OK answer is right: a unary call whose body holds exactly one
 * complete frame that decodes as the method's request (a valid request,
 * whatever the mutation did); a Work stream with no complete frame (an
 * empty stream, closed by the client: nothing was read). A Work message
 * must be the Hello of an admitted worker, which no case has.
 */
function okAllowed(c: RawCase): boolean {
  const frames = completeFrames(c.body);
  return METHODS[c.method].unary ? frames.length === 1 && decodes(c.method, frames[0]) : frames.length === 0;
}

const rawCase: fc.Arbitrary<RawCase> = fc.constantFrom<Method>('Register', 'GetAdapter', 'Work').chain((method) => {
  const valid = METHODS[method].valid();
  const one = (kind: string, payload: Buffer) => ({ method, kind, body: frame(payload) });
  return fc.oneof(
    fc.array(fc.nat(8 * valid.length - 1), { minLength: 1, maxLength: 8 }).map((bits) => {
      const payload = Buffer.from(valid);
      for (const b of bits) payload[b >> 3] ^= 1 << (b & 7);
      return one('bit flips', payload);
    }),
    fc.nat(valid.length - 1).map((cut) => ({ method, kind: 'truncated body', body: frame(valid.subarray(0, cut), valid.length) })),
    fc.integer({ min: 1, max: valid.length }).map((less) => ({ method, kind: 'declared length short', body: frame(valid, valid.length - less) })),
    fc.integer({ min: 1, max: 1 << 16 }).map((more) => ({ method, kind: 'declared length long', body: frame(valid, valid.length + more) })),
    fc.integer({ min: 1 << 28, max: 2 ** 32 - 1 }).map((huge) => ({ method, kind: 'declared length huge', body: frame(Buffer.alloc(0), huge) })),
    fc.constant({ method, kind: 'compressed flag, no encoding', body: frame(valid, valid.length, true) }),
    fc.constant({ method, kind: 'two messages', body: Buffer.concat([frame(valid), frame(valid)]) }),
    fc.array(rawField, { minLength: 1, maxLength: 6 }).map((fields) => one('fields of any wire type', Buffer.concat(fields))),
    fc.uint8Array({ minLength: 1, maxLength: 64 }).map((bytes) => one('random bytes', Buffer.from(bytes))),
  );
});

/** One call by hand: `body` as the whole request; the grpc-status, or 'reset' when the stream closed without one. */
function rawCall(session: ClientHttp2Session, path: string, body: Buffer): Promise<number | 'reset'> {
  return new Promise((resolve) => {
    const req = session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers' });
    let code: number | 'reset' = 'reset';
    const take = (h: Record<string, unknown>) => {
      if (h['grpc-status'] !== undefined) code = Number(h['grpc-status']);
    };
    req.on('response', take);
    req.on('trailers', take);
    req.on('data', () => undefined);
    req.on('error', () => undefined);
    req.on('close', () => resolve(code));
    req.end(body);
  });
}

async function fuzzRaw(address: string, cases: readonly RawCase[]) {
  const byKind = new Tally();
  const outcomes = new Tally();
  const violations: string[] = [];
  // a case that breaks the connection (GOAWAY) does not take the next ones with it
  let session: ClientHttp2Session | undefined;
  const live = (): ClientHttp2Session => {
    if (!session || session.closed || session.destroyed) {
      session = http2Connect(`http://${address}`);
      session.on('error', () => undefined);
    }
    return session;
  };
  let next = 0;
  await Promise.all(
    Array.from({ length: PARALLEL }, async () => {
      while (next < cases.length) {
        const c = cases[next++];
        const code = await rawCall(live(), METHODS[c.method].path, c.body);
        byKind.add(`${c.method} ${c.kind}`);
        outcomes.add(`${c.method} ${c.kind} ${code === 'reset' ? 'reset' : status[code]}`);
        if (code === status.OK && !okAllowed(c)) violations.push(`${c.method} ${c.kind}: OK for ${c.body.toString('hex')}`);
      }
    }),
  );
  session?.close();
  return { byKind, outcomes, violations };
}

// ---- (b) a rogue worker speaking the protocol ----

/** How a rogue answer is wrong, and the reason the coordinator must count it under. */
const MUTATIONS: Readonly<Record<string, { readonly reason: RejectReason; readonly edit: (r: TaskResult & { chunks: ChunkMessage[] }) => void }>> = {
  'wrong step': { reason: 'stale', edit: (r) => void (r.step = Number(r.step) + 1) },
  'wrong round': { reason: 'stale', edit: (r) => void (r.round = (r.round ?? 0) + 1) },
  'adversarial loss NaN': { reason: 'non_finite', edit: (r) => void (r.chunks[0].adv_loss_sum = NaN) },
  'clean loss −Inf': { reason: 'non_finite', edit: (r) => void (r.chunks[0].clean_loss_sum = -Infinity) },
  'chunk not assigned': { reason: 'bad_chunks', edit: (r) => void (r.chunks[0].chunk_index = 10_000) },
  'chunk twice': { reason: 'bad_chunks', edit: (r) => void r.chunks.push({ ...r.chunks[0] }) },
  'sample count wrong': { reason: 'bad_chunks', edit: (r) => void (r.chunks[0].count = (r.chunks[0].count ?? 0) + 1) },
  'unexpected tensor': { reason: 'bad_shape', edit: (r) => void r.chunks[0].grads!.push({ name: 'evil', tensor: { shape: [1], dtype: 'float32', data: Buffer.alloc(4) } }) },
  // tensor edits; a round without chunk tensors (eval) gets an unexpected one instead
  'NaN in a tensor': { reason: 'non_finite', edit: (r) => tensorEdit(r, (t) => void t.data.writeFloatLE(NaN, 0)) },
  '+Inf in a tensor': { reason: 'non_finite', edit: (r) => tensorEdit(r, (t) => void t.data.writeFloatLE(Infinity, 0)) },
  'shape not the round’s': { reason: 'bad_shape', edit: (r) => tensorEdit(r, (t) => void (t.shape = [...t.shape, 1].reverse())) },
  'byte length ≠ shape': { reason: 'bad_shape', edit: (r) => tensorEdit(r, (t) => void (t.data = t.data.subarray(1))) },
  'dtype float64': { reason: 'bad_shape', edit: (r) => tensorEdit(r, (t) => void (t.dtype = 'float64')) },
  'tensor missing': { reason: 'bad_shape', edit: (r) => tensorEdit(r, (_t, grads) => void grads.pop()) },
};
type ChunkMessage = NonNullable<TaskResult['chunks']>[number];
interface TensorMessage {
  shape: number[];
  dtype: string;
  data: Buffer;
}

function tensorEdit(r: TaskResult & { chunks: ChunkMessage[] }, edit: (t: TensorMessage, grads: unknown[]) => void): void {
  const grads = r.chunks[0].grads!;
  if (!grads.length) {
    grads.push({ name: 'evil', tensor: { shape: [1], dtype: 'float32', data: Buffer.alloc(4) } });
    return;
  }
  const t = grads[0].tensor as unknown as TensorMessage;
  const copy: TensorMessage = { shape: [...t.shape], dtype: t.dtype, data: Buffer.from(t.data) };
  grads[0] = { ...grads[0], tensor: copy as never };
  edit(copy, grads);
}

/** What a mutation makes of a round that has no tensor to edit. */
const effectiveReason = (name: string, hasTensor: boolean): RejectReason => (!hasTensor && /tensor|shape|dtype/.test(name) ? 'bad_shape' : MUTATIONS[name].reason);

/** A well-formed result of zeros for the task (accepted as is: every answer sent is mutated). */
function zeroResult(task: Parameters<typeof decodeTask>[0], shapes: RoundShapes): TaskResult & { chunks: ChunkMessage[] } {
  const { task: round, envelope } = decodeTask(task, shapes);
  const names: Record<string, readonly (readonly [string, readonly number[]])[]> = {
    delta: [[DELTA_KEY, shapes.delta]],
    lora: [...shapes.vision, [TEXT_FEATURES_KEY, shapes.textFeatures]],
    text: [...shapes.text],
    eval: [],
  };
  const zeros = (shape: readonly number[]) => new Float32Array(shape.reduce((a, b) => a * b, 1));
  const chunks = round.chunks.map(
    (c): ChunkResult => ({ index: c.index, count: c.samples.length, advLossSum: 0, cleanLossSum: 0, grads: new Map(names[round.kind].map(([n, s]) => [n, zeros(s)])), ...(round.kind === 'eval' ? { correct: 0 } : {}) }),
  );
  const result: RoundResult = { chunks, localDelta: null };
  const message = encodeResult(envelope.taskId, round, result, { compute_ms: 1, fetch_ms: 0, decode_ms: 0, encode_ms: 0, total_ms: 1 }, shapes);
  return { ...message, chunks: message.chunks! };
}

interface RogueLog {
  /** answers sent, by mutation (and 'unknown task id', 'sent twice') */
  readonly sent: Tally;
  /** the reasons the coordinator must count */
  readonly expected: Tally;
  incarnations: number;
  excluded: number;
}

function register(client: CoordinatorClient, name: string) {
  return new Promise<RegisterReply__Output>((resolve, reject) =>
    client.Register({ capabilities: { worker_name: name, backend: 'rogue', cores: 1, run_spec_version: RUN_SPEC_VERSION } }, (err, reply) => (err ? reject(err) : resolve(reply!))),
  );
}

/** One rogue incarnation: registers, answers every task wrongly, ends when it is told to drain (or the run ends). */
async function rogue(address: string, name: string, shapesOf: (spec: RunSpec__Output | null) => Promise<RoundShapes>, plan: Iterator<string>, log: RogueLog): Promise<void> {
  const client = coordinatorClient(address, channelCredentials({ mode: 'insecure' }, () => undefined), grpcChannelOptions());
  const reply = await register(client, name);
  const shapes = await shapesOf(reply.run_spec);
  log.incarnations++;
  const call = client.Work();
  let counted = 0;
  const beat = setInterval(() => call.write({ heartbeat: { worker_id: reply.worker_id, seq: 1 } }), reply.heartbeat_interval_ms);
  try {
    await new Promise<void>((resolve) => {
      call.on('status', () => resolve());
      call.on('error', () => undefined);
      call.on('data', (m: CoordinatorMessage__Output) => {
        if (m.body === 'drain') {
          if (/^excluded after 3 bad results/.test(m.drain?.reason ?? '')) log.excluded++;
          call.end();
          return;
        }
        // excluded at its 3rd bad result: what it sends after that may meet a closed session
        if (m.body !== 'task' || !m.task || counted === 3) return;
        const base = zeroResult(m.task, shapes);
        const hasTensor = base.chunks[0]?.grads?.length ? true : false;
        const mutation = plan.next().value as string;
        // first a result for a task never issued (stale, not a bad result: it may just be late)
        call.write({ result: { ...base, task_id: `${m.task.task_id}-unknown` } });
        log.sent.add('unknown task id');
        log.expected.add('stale');
        const bad = structuredClone(base);
        MUTATIONS[mutation].edit(bad);
        call.write({ result: bad });
        log.sent.add(mutation);
        const reason = effectiveReason(mutation, hasTensor);
        log.expected.add(reason);
        if (reason !== 'stale' && ++counted === 3) return;
        // the same answer again: its task is settled, so it is stale
        call.write({ result: bad });
        log.sent.add('sent twice');
        log.expected.add('stale');
      });
      call.write({ hello: { worker_id: reply.worker_id, adapter_version: 0 } });
    });
  } finally {
    clearInterval(beat);
    client.close();
  }
}

test('the live coordinator port under fuzz: every case refused and counted, no crash, no lost step', async () => {
  const tmp = scratch();
  const honest: Worker[] = [];
  try {
    const reference = await trainReference(ARGS, join(tmp.dir, 'train'));
    const cases = fc.sample(rawCase, { numRuns: CASES, seed: SEED });
    const plan = fc.sample(fc.constantFrom(...Object.keys(MUTATIONS)), { numRuns: 10_000, seed: SEED })[Symbol.iterator]();
    const rogues: RogueLog = { sent: new Tally(), expected: new Tally(), incarnations: 0, excluded: 0 };
    let raw: Awaited<ReturnType<typeof fuzzRaw>> | undefined;
    let rawDone!: Promise<void>;
    let roguesDone!: Promise<void>;
    let roguesFinished = false;
    /** Until a rogue incarnation is live (or the last is gone): training goes on with one in the cluster. */
    const rogueLive = async (c: Coordinator) => {
      while (!roguesFinished && c.registry.live().length < 3) await Promise.race([c.registry.nextEvent(), roguesDone]);
    };
    let coordinator!: Coordinator;
    let healthy = 0;
    const flags = coordinatorRunFrom(parseFlags(coordinatorCommand, [...ARGS, '--out', join(tmp.dir, 'cluster'), '--listen', '127.0.0.1:0', '--metrics-port', '0', '--insecure']));
    await serveTraining(flags, quiet, {
      onListening: async (c) => {
        coordinator = c;
        for (const name of ['h1', 'h2']) honest.push(await startWorker(c, name));
        while (c.registry.live().length < 2) await c.registry.nextEvent();
        let shapes: Promise<RoundShapes> | undefined;
        const shapesOf = (spec: RunSpec__Output | null) =>
          (shapes ??= (async () => {
            const setup = await workerSetupFrom({}, await initBackend(), quiet).setup(spec);
            setup.dispose();
            return setup.shapes;
          })());
        rawDone = fuzzRaw(c.address, cases).then((r) => void (raw = r));
        roguesDone = (async () => {
          // until the run ends: then Register is refused
          for (let i = 1; i <= ROGUES; i++) await rogue(c.address, `rogue-${i}`, shapesOf, plan, rogues);
        })().catch((err: ServiceError) => {
          if (err.code !== status.UNAVAILABLE) throw err;
        }).finally(() => void (roguesFinished = true));
        await rogueLive(c);
      },
      // the last steps wait for the raw cases, so every one meets a live coordinator
      onStep: async (report) => {
        if (report.step === ITERS - 2) await rawDone;
        await rogueLive(coordinator);
        // the port still answers a well-formed call between the cases
        healthy += await new Promise<number>((resolve) => {
          const client = coordinatorClient(coordinator.address, channelCredentials({ mode: 'insecure' }, () => undefined), grpcChannelOptions());
          client.GetAdapter({ version: 0 }, (err) => (client.close(), resolve(err ? 0 : 1)));
        });
      },
    });
    await Promise.all(honest.map((w) => w.done));
    await roguesDone;

    // (a) every raw case answered, none accepted that was not one well-formed message
    assert.ok(raw, 'the raw cases ran');
    console.log(`raw cases ${raw.byKind.total}: ${raw.byKind}\nraw outcomes: ${raw.outcomes}`);
    console.log(`rogue answers ${rogues.sent.total} from ${rogues.incarnations} incarnations (${rogues.excluded} excluded): ${rogues.sent}`);
    assert.equal(raw.byKind.total, CASES);
    assert.deepEqual(raw.violations, []);

    // (b) every rogue answer refused, counted by its reason; each incarnation excluded after 3 bad results
    assert.equal(rogues.excluded, ROGUES, 'every rogue incarnation got tasks and was excluded');
    const metrics = await coordinator.metricsRegistry.getMetricsAsJSON();
    const values = (name: string) => metrics.find((m) => m.name === name)?.values ?? [];
    const counted = Object.fromEntries(values(CoordinatorMetricNames.rejectedResults).map((v) => [v.labels.reason, v.value]));
    assert.deepEqual(counted, Object.fromEntries(rogues.expected.counts), 'advclip_rejected_results_total by reason');
    assert.equal(values(CoordinatorMetricNames.workersExcluded)[0]?.value ?? 0, rogues.excluded);

    // the coordinator served throughout and lost no step: the adapter is advclip train's, bit for bit
    assert.equal(healthy, ITERS, 'a well-formed GetAdapter answered after every step');
    assert.ok(adapterBytes(join(tmp.dir, 'cluster')).equals(reference), 'the adapter differs from advclip train');
  } finally {
    await Promise.all(honest.map((w) => w.close()));
    tmp.done();
  }
});
