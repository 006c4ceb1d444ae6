/**
 * The worker service: registers with the coordinator, builds the run's
 * setup from the RunSpec it gets back (through `prepare`, so this shell
 * does no loading itself), holds adapter versions, and answers
 * each Task on the Work stream with its ShardComputer's sums, one task at
 * a time, in arrival order. A sweep's coordinator (RegisterReply.multi_run)
 * gives no run at Register: each task names its run, which the worker
 * fetches (GetRun), prepares and keeps in its RunCache.
 *
 * Lifecycle: starting → ready (stream open) → draining (Drain or SIGTERM:
 * finish the tasks in flight, take no more) → stopped. `done` settles when
 * the worker stops: resolved after a drain, rejected when the coordinator
 * cannot be reached.
 */
import type { ClientDuplexStream } from '@grpc/grpc-js';
import * as tf from '@tensorflow/tfjs';
import { AdvclipError } from '../core/errors.ts';
import type { LoraWeights } from '../core/lora.ts';
import { imageSamplesOf, textChunks, type ShardComputer } from '../core/shard.ts';
import { AdapterSubscriber } from '../protocol/adapter-store.ts';
import type { CoordinatorClient } from '../protocol/generated/advclip/v1/Coordinator.ts';
import type { CoordinatorMessage__Output } from '../protocol/generated/advclip/v1/CoordinatorMessage.ts';
import type { RegisterReply__Output } from '../protocol/generated/advclip/v1/RegisterReply.ts';
import type { Task__Output } from '../protocol/generated/advclip/v1/Task.ts';
import type { WorkerMessage } from '../protocol/generated/advclip/v1/WorkerMessage.ts';
import { grpcChannelOptions, HEARTBEAT_INTERVAL_MS, REGISTER_MAX_MESSAGE_BYTES, resolveGrpcTransport, type GrpcTransportOptions } from '../protocol/grpc-options.ts';
import { fromGrpcError } from '../protocol/grpc-status.ts';
import { startHttpEndpoints, type HttpEndpoints, type LifecycleState } from '../protocol/http-endpoints.ts';
import { createMetricsRegistry, createWorkerMetrics, type WorkerMetrics } from '../protocol/metrics.ts';
import { connectNats, isNatsUnavailable, watchLinkState, type NatsLink, type NatsTls } from '../protocol/nats-connection.ts';
import { coordinatorClient } from '../protocol/proto-loader.ts';
import type { RunSpec__Output } from '../protocol/generated/advclip/v1/RunSpec.ts';
import type { Logger } from '../protocol/log.ts';
import { decodeTask, encodeResult, maxMessageBytes, type RoundShapes } from '../protocol/task-codec.ts';
import { channelCredentials, type TransportSecurity } from '../protocol/tls.ts';
import { AdapterHolder } from './adapter-holder.ts';
import { RunCache } from './run-cache.ts';

/** Builds what a worker computes with from RegisterReply.run_spec, refusing a run it cannot compute (run/worker-setup.ts). */
export interface RunPreparer {
  /** the RunSpec version it reads, sent in Register: the coordinator admits only its own */
  readonly specVersion: number;
  setup(spec: RunSpec__Output | null): Promise<WorkerSetup>;
}

/** What a worker computes with, built from the run's RunSpec. */
export interface WorkerSetup {
  /** a ShardComputer, or a view of one shared by replicas (replicas.ts) */
  readonly shard: Pick<ShardComputer, 'compute'>;
  readonly initial: LoraWeights;
  readonly shapes: RoundShapes;
  dispose(): void;
}

/** What a worker holds of one run: its setup and its adapter versions. */
export interface HeldRun {
  readonly setup: WorkerSetup;
  readonly holder: AdapterHolder;
}

export interface WorkerCapabilityInfo {
  readonly backend: string;
  readonly device: string;
  readonly cores: number;
  /** '' when the model is only known from the RunSpec */
  readonly modelSha256: string;
  readonly version: string;
}

export interface WorkerOptions {
  /** HOST:PORT of the coordinator */
  readonly coordinator: string;
  readonly security: TransportSecurity;
  readonly clusterToken?: string;
  readonly name: string;
  readonly capabilities: WorkerCapabilityInfo;
  readonly prepare: RunPreparer;
  /** NATS URL; default: the one in RegisterReply; '' disables NATS */
  readonly nats?: { readonly url?: string; readonly user?: string; readonly password?: string; readonly tls?: NatsTls };
  readonly metrics: { readonly port: number; readonly host?: string };
  /** how long to keep trying to reach the coordinator (default: until it answers; a worker may start first) */
  readonly connectTimeoutMs?: number;
  /** stops waiting for the coordinator: start() rejects (UNAVAILABLE) at the next Register attempt after an abort */
  readonly signal?: AbortSignal;
  /** gRPC keepalive of the connection to the coordinator (grpc-options.ts); its message limit, when set, replaces the one sized from the run's shapes */
  readonly grpc?: GrpcTransportOptions;
  /** a sweep's runs held at once (run-cache.ts; default DEFAULT_MAX_RUNS) */
  readonly maxRuns?: number;
  /** test only: block the event loop this long in every task, as a long synchronous compute does */
  readonly testTaskBlockMs?: number;
  readonly log: Logger;
}

type WorkCall = ClientDuplexStream<WorkerMessage, CoordinatorMessage__Output>;

export class Worker {
  #state: LifecycleState = 'starting';
  #coordinatorDrainReason: string | undefined;
  #call: WorkCall | null = null;
  #queue: Promise<void> = Promise.resolve();
  #inFlight = 0;
  #heartbeat: NodeJS.Timeout | undefined;
  #seq = 0;
  #tasksDone = 0;
  #resolveDone!: () => void;
  #rejectDone!: (err: AdvclipError) => void;
  /** settles when the worker stops */
  readonly done: Promise<void>;

  private constructor(
    readonly id: string,
    readonly metricsPort: number,
    private readonly o: WorkerOptions,
    private readonly client: CoordinatorClient,
    /** the largest gRPC message this worker sends or accepts on Work and GetAdapter */
    readonly maxMessageBytes: number,
    private readonly reply: RegisterReply__Output,
    /** the run given at Register; null from a sweep's coordinator */
    private readonly own: HeldRun | null,
    private readonly runs: RunCache<HeldRun>,
    private readonly metrics: WorkerMetrics,
    private readonly http: HttpEndpoints,
    private readonly nats: { link: NatsLink; subscriber: AdapterSubscriber } | null,
  ) {
    this.done = new Promise<void>((resolve, reject) => {
      this.#resolveDone = resolve;
      this.#rejectDone = reject;
    });
    this.done.catch(() => undefined);
  }

  static async start(o: WorkerOptions): Promise<Worker> {
    const registry = createMetricsRegistry();
    const metrics = createWorkerMetrics(registry);
    let current: Worker | null = null;
    const http = await startHttpEndpoints({
      host: o.metrics.host,
      port: o.metrics.port,
      registry,
      readiness: () => {
        const state = current?.state ?? 'starting';
        return { ready: state === 'ready', state };
      },
    });
    const cleanups: (() => unknown)[] = [() => http.close()];
    try {
      const credentials = channelCredentials(o.security, (m) => o.log.warn(m));
      // Register's reply is small; the run's limit is known once its shapes are, and the Work channel is opened with it
      const registrar = coordinatorClient(o.coordinator, credentials, grpcChannelOptions({ ...o.grpc, maxMessageBytes: REGISTER_MAX_MESSAGE_BYTES }));
      cleanups.push(() => registrar.close());
      const reply = await register(registrar, o);
      registrar.close();
      o.log.info(`registered with ${o.coordinator} as ${reply.worker_id}`);
      const setup = reply.multi_run ? null : await o.prepare.setup(reply.run_spec);
      if (setup) cleanups.push(() => setup.dispose());
      // a sweep's coordinator has no run of its own and its runs come and go: its channel keeps the transport's limit
      const limit = o.grpc?.maxMessageBytes ?? (setup ? runMessageBytes(setup.shapes, reply.run_spec) : resolveGrpcTransport(o.grpc).maxMessageBytes);
      const client = coordinatorClient(o.coordinator, credentials, grpcChannelOptions({ ...o.grpc, maxMessageBytes: limit }));
      cleanups.push(() => client.close());
      const nats = await connectWorkerNats(o, reply);
      if (nats) cleanups.push(() => nats.link.close());
      const own = setup && {
        setup,
        holder: new AdapterHolder({
          initial: setup.initial,
          subscriber: nats?.subscriber ?? null,
          natsLink: nats ? watchLinkState(nats.link) : undefined,
          getAdapter: (version) => getAdapter(client, version),
          onHeld: (version) => metrics.adapterVersion.set(version),
          warn: (m) => o.log.warn(m),
        }),
      };
      const runs = new RunCache<HeldRun>(
        (runId) => loadRun(client, o, runId),
        (run) => {
          run.holder.dispose();
          run.setup.dispose();
        },
        o.maxRuns,
      );
      const w = new Worker(reply.worker_id, http.port, o, client, limit, reply, own, runs, metrics, http, nats);
      current = w;
      w.#open();
      return w;
    } catch (err) {
      for (const cleanup of cleanups.reverse()) await Promise.resolve(cleanup()).catch(() => undefined);
      throw err instanceof AdvclipError ? err : fromGrpcError(err, 'worker start');
    }
  }

  get state(): LifecycleState {
    return this.#state;
  }

  /** Newest verified adapter version held. */
  get adapterVersion(): number {
    return this.own?.holder.newest ?? 0;
  }

  /** A sweep's runs held, least recently used first. */
  get runsHeld(): string[] {
    return this.runs.held;
  }

  /** The reason of the coordinator's Drain, when the coordinator drained this worker (DrainReasons). */
  get coordinatorDrainReason(): string | undefined {
    return this.#coordinatorDrainReason;
  }

  /** Tasks answered with a result. */
  get tasksDone(): number {
    return this.#tasksDone;
  }

  /** Finish the tasks in flight, take no more, close the stream; `done` resolves. */
  drain(reason: string): void {
    if (this.#state !== 'ready' && this.#state !== 'starting') return;
    this.#state = 'draining';
    this.o.log.info(`draining: ${reason}`);
    void this.#queue.then(() => this.#finish());
  }

  /** Stops at once (tests, errors); prefer drain. */
  async close(): Promise<void> {
    if (this.#state === 'stopped') return;
    this.#state = 'draining';
    this.#call?.cancel();
    await this.#finish();
  }

  #open(): void {
    const call = this.client.Work();
    this.#call = call;
    call.on('data', (m: CoordinatorMessage__Output) => this.#onMessage(m));
    call.on('error', (err) => {
      if (this.#state !== 'ready') return;
      const e = fromGrpcError(err, 'Work stream');
      this.#fail(
        e.code === 'RESOURCE_EXHAUSTED'
          ? new AdvclipError('RESOURCE_EXHAUSTED', `${e.message}: the coordinator sent a message above this worker's limit of ${this.maxMessageBytes} bytes (sized from the run's shapes)`, { cause: err })
          : e,
      );
    });
    call.on('end', () => {
      if (this.#state === 'ready') this.#fail(new AdvclipError('UNAVAILABLE', 'the coordinator closed the Work stream without a Drain'));
    });
    call.write({ hello: { worker_id: this.id, adapter_version: this.adapterVersion } });
    this.#heartbeat = setInterval(() => {
      call.write({ heartbeat: { worker_id: this.id, seq: ++this.#seq, adapter_version: this.adapterVersion, tasks_in_flight: this.#inFlight } });
    }, Math.max(100, this.reply.heartbeat_interval_ms || HEARTBEAT_INTERVAL_MS));
    this.#heartbeat.unref();
    this.#state = 'ready';
  }

  #onMessage(m: CoordinatorMessage__Output): void {
    switch (m.body) {
      case 'task':
        if (m.task) this.#enqueue(m.task);
        break;
      case 'adapter_version':
        // an empty object name: the version is not on NATS (its publish failed), fetch it over gRPC now
        if (m.adapter_version) this.#prefetch(m.adapter_version.run_id, m.adapter_version.version, m.adapter_version.sha256, m.adapter_version.object !== '');
        break;
      case 'drain':
        this.#coordinatorDrainReason = m.drain?.reason ?? '';
        this.drain(m.drain?.reason || 'the coordinator asked');
        break;
    }
  }

  /** A version announced for the run given at Register, or for a sweep's run this worker holds (others are fetched when a task needs them). */
  #prefetch(runId: string, version: number, sha256: string, onNats: boolean): void {
    if (!runId) this.own?.holder.prefetch(version, sha256, onNats);
    else void this.runs.peek(runId)?.then((run) => run.holder.prefetch(version, sha256, onNats), () => undefined);
  }

  /** The run a task belongs to: a sweep's (loaded on its first task), or the one given at Register. */
  #runOf(message: Task__Output): Promise<HeldRun> {
    if (message.run_id) return this.runs.get(message.run_id);
    if (this.own) return Promise.resolve(this.own);
    return Promise.reject(new AdvclipError('INVALID_ARGUMENT', `task ${message.task_id} names no run, and this coordinator serves a sweep (multi_run)`));
  }

  #enqueue(task: Task__Output): void {
    if (this.#state !== 'ready') {
      this.#send({ error: { task_id: task.task_id, step: task.step, round: task.round, code: 'UNAVAILABLE', message: 'worker is draining' } });
      return;
    }
    this.#inFlight++;
    this.#queue = this.#queue.then(() => this.#run(task)).finally(() => this.#inFlight--);
  }

  async #run(message: Task__Output): Promise<void> {
    const t0 = performance.now();
    try {
      const run = await this.#runOf(message);
      const { task, envelope } = decodeTask(message, run.setup.shapes);
      const t1 = performance.now();
      const tensors = await run.holder.tensorsAt(envelope.adapterVersion, envelope.adapterSha256);
      const t2 = performance.now();
      const result = await run.setup.shard.compute(task, tensors, envelope.adapterVersion);
      if (this.o.testTaskBlockMs) blockEventLoop(this.o.testTaskBlockMs);
      const t3 = performance.now();
      const samples = imageSamplesOf(task);
      const timing = { decode_ms: t1 - t0, fetch_ms: t2 - t1, compute_ms: t3 - t2, encode_ms: 0, total_ms: 0 };
      const encoded = encodeResult(envelope.taskId, task, result, timing, run.setup.shapes);
      const t4 = performance.now();
      timing.encode_ms = t4 - t3;
      timing.total_ms = t4 - t0;
      this.#send({ result: encoded });
      this.#tasksDone++;
      this.metrics.computeSeconds.observe((t3 - t2) / 1000);
      this.metrics.samplesProcessed.inc(samples);
    } catch (err) {
      const e = err instanceof AdvclipError ? err : new AdvclipError('INTERNAL', (err as Error).message);
      this.metrics.errors.inc({ kind: e.code === 'FAILED_PRECONDITION' ? 'unverified_adapter' : 'compute' });
      this.o.log.warn(`task ${message.task_id} failed: ${e.message}`, { code: e.code });
      this.#send({ error: { task_id: message.task_id, step: message.step, round: message.round, code: e.code, message: e.message } });
    }
  }

  #send(message: WorkerMessage): void {
    if (this.#call && this.#state !== 'stopped') this.#call.write(message);
  }

  #fail(err: AdvclipError): void {
    this.metrics.errors.inc({ kind: 'stream' });
    this.o.log.error(err.message, { code: err.code });
    this.#state = 'draining';
    void this.#finish(err);
  }

  async #finish(err?: AdvclipError): Promise<void> {
    if (this.#state === 'stopped') return;
    clearInterval(this.#heartbeat);
    const call = this.#call;
    if (call && !err) {
      const ended = new Promise<void>((resolve) => {
        call.once('status', () => resolve());
        call.once('error', () => resolve());
        setTimeout(resolve, 2_000).unref();
      });
      call.end();
      await ended;
    }
    this.#state = 'stopped';
    this.own?.holder.dispose();
    this.own?.setup.dispose();
    this.runs.dispose();
    await this.nats?.subscriber.close();
    await this.nats?.link.close();
    this.client.close();
    await this.http.close();
    this.o.log.info('stopped', { numTensors: tf.memory().numTensors });
    if (err) this.#rejectDone(err);
    else this.#resolveDone();
  }
}

/** Blocks this thread without spinning, as a synchronous wasm compute blocks the event loop. */
function blockEventLoop(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/**
 * The largest message of the run in `spec` either way (task-codec.ts
 * maxMessageBytes, as the coordinator sizes its own limits): every image
 * chunk of a full minibatch, every text chunk, or an adapter version.
 */
function runMessageBytes(shapes: RoundShapes, spec: RunSpec__Output | null): number {
  const batch = spec?.train?.batch_size || 1;
  const chunk = spec?.train?.chunk_size || 1;
  return maxMessageBytes(shapes, { image: Math.ceil(batch / chunk), text: textChunks(shapes.textFeatures[0]).length, samples: batch });
}

/** Longest wait between two Register attempts, and between two "still waiting" log lines. */
const REGISTER_BACKOFF_MAX_MS = 5_000;
const WAITING_LOG_EVERY_MS = 30_000;

/** Registers, retrying with backoff while the coordinator is not up yet (not reachable, or not answering). */
async function register(client: CoordinatorClient, o: WorkerOptions): Promise<RegisterReply__Output> {
  const deadline = Date.now() + (o.connectTimeoutMs ?? Infinity);
  let lastLogged = -Infinity;
  const request = {
    capabilities: {
      backend: o.capabilities.backend,
      device: o.capabilities.device,
      cores: o.capabilities.cores,
      model_sha256: o.capabilities.modelSha256,
      worker_name: o.name,
      version: o.capabilities.version,
      run_spec_version: o.prepare.specVersion,
    },
    cluster_token: o.clusterToken ?? '',
  };
  for (let wait = 100; ; wait = Math.min(2 * wait, REGISTER_BACKOFF_MAX_MS)) {
    try {
      return await new Promise<RegisterReply__Output>((resolve, reject) =>
        client.Register(request, { deadline: Date.now() + 10_000 }, (err, reply) => (err || !reply ? reject(err) : resolve(reply))),
      );
    } catch (err) {
      const e = fromGrpcError(err, `Register with ${o.coordinator}`);
      if (e.code !== 'UNAVAILABLE' && e.code !== 'DEADLINE_EXCEEDED') throw e;
      if (Date.now() + wait > deadline || o.signal?.aborted) throw e;
      if (Date.now() - lastLogged >= WAITING_LOG_EVERY_MS) {
        o.log.info(`waiting for the coordinator at ${o.coordinator} (${e.message}); retrying`);
        lastLogged = Date.now();
      }
      await new Promise((r) => setTimeout(r, wait));
    }
  }
}

function getAdapter(client: CoordinatorClient, version: number, runId = '') {
  return new Promise<{ version: number; sha256: string; bytes: Uint8Array }>((resolve, reject) =>
    client.GetAdapter({ version, run_id: runId }, { deadline: Date.now() + 30_000 }, (err, blob) =>
      err || !blob ? reject(fromGrpcError(err, `GetAdapter(${version}${runId ? `, run ${runId}` : ''})`)) : resolve({ version: blob.version, sha256: blob.sha256, bytes: new Uint8Array(blob.safetensors) }),
    ),
  );
}

/** A sweep's run: its RunSpec from the coordinator (GetRun), prepared as the run given at Register is; its adapter versions come over gRPC. */
async function loadRun(client: CoordinatorClient, o: WorkerOptions, runId: string): Promise<HeldRun> {
  const spec = await new Promise<RunSpec__Output>((resolve, reject) =>
    client.GetRun({ run_id: runId }, { deadline: Date.now() + 30_000 }, (err, reply) => (err || !reply ? reject(fromGrpcError(err, `GetRun(${runId})`)) : resolve(reply))),
  );
  o.log.info(`preparing run ${runId} of the sweep`);
  const setup = await o.prepare.setup(spec);
  const holder = new AdapterHolder({ initial: setup.initial, subscriber: null, getAdapter: (version) => getAdapter(client, version, runId), warn: (m) => o.log.warn(`run ${runId}: ${m}`) });
  return { setup, holder };
}

async function connectWorkerNats(o: WorkerOptions, reply: RegisterReply__Output): Promise<{ link: NatsLink; subscriber: AdapterSubscriber } | null> {
  const url = o.nats?.url ?? reply.nats_url;
  if (!url) {
    o.log.info('no NATS: adapter versions come over gRPC');
    return null;
  }
  const link = await connectNats({ servers: url, user: o.nats?.user, password: o.nats?.password, tls: o.nats?.tls, cluster: reply.nats_cluster || undefined, name: `advclip-${o.name}` });
  if (isNatsUnavailable(link)) {
    o.log.warn(`${link.error.message}; adapter versions come over gRPC`);
    return null;
  }
  try {
    const subscriber = await AdapterSubscriber.open(link, { log: (m) => o.log.warn(m) });
    return { link, subscriber };
  } catch (err) {
    await link.close();
    o.log.warn(`cannot watch adapter versions on NATS (${(err as Error).message}); they come over gRPC`);
    return null;
  }
}
