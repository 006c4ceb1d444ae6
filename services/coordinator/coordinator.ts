/**
 * The coordinator service: the gRPC server workers talk to, the registry
 * of live workers, the remote executor the step driver runs rounds
 * through, adapter versions (NATS + GetAdapter), Prometheus metrics and
 * /healthz /readyz, cluster events. The step loop itself belongs to the
 * caller (the CLI runs the same loop as `advclip train` with `execute`);
 * after each step it calls stepDone (and checkpointWritten after writing one).
 * At start it clears the adapter versions an earlier run left on NATS.
 *
 * Lifecycle: starting → ready (listening, taking workers) → draining (no
 * more steps; workers are told to drain) → stopped.
 */
import { AdvclipError } from '../core/errors.ts';
import type { EvaluationReport } from '../core/eval-round.ts';
import { roundsPerStep, type StepReport, type TrainState, type Executor } from '../core/trainer.ts';
import type { TrainSpec } from '../core/train-spec.ts';
import type { AdapterBlob } from '../protocol/adapter-blob.ts';
import { AdapterPublisher } from '../protocol/adapter-store.ts';
import { publishEvent } from '../protocol/events.ts';
import { startHttpEndpoints, type HttpEndpoints, type LifecycleState } from '../protocol/http-endpoints.ts';
import { createCoordinatorMetrics, createMetricsRegistry, type CoordinatorMetrics } from '../protocol/metrics.ts';
import { connectNats, isNatsUnavailable, watchLinkState, type NatsLink, type NatsTls } from '../protocol/nats-connection.ts';
import type { CoordinatorMessage } from '../protocol/generated/advclip/v1/CoordinatorMessage.ts';
import type { RunSpec } from '../protocol/generated/advclip/v1/RunSpec.ts';
import { HEARTBEAT_INTERVAL_MS } from '../protocol/grpc-options.ts';
import type { Logger } from '../protocol/log.ts';
import { serverCredentials } from '../protocol/tls.ts';
import type { ServerCredentials } from '@grpc/grpc-js';
import { maxMessageBytes, type RoundShapes } from '../protocol/task-codec.ts';
import { textChunks } from '../core/shard.ts';
import type { TransportSecurity } from '../protocol/tls.ts';
import type { Registry } from 'prom-client';
import { AdapterVersions } from './adapter-versions.ts';
import { Admission } from './admission.ts';
import { RemoteExecutor, rollbackWindowFor, type DeadlineOptions, type RoundCosts } from './remote-executor.ts';
import { startCoordinatorServer, type CoordinatorServer } from './server.ts';
import { WorkerRegistry, type RegistryEvent } from './worker-registry.ts';

export interface NatsOptions {
  readonly url: string;
  readonly user?: string;
  readonly password?: string;
  /** prefixes subjects and buckets (subjects.ts) */
  readonly cluster?: string;
  readonly tls?: NatsTls;
}

export interface CoordinatorOptions {
  readonly spec: TrainSpec;
  /** size of the K-shot training set */
  readonly setSize: number;
  readonly shapes: RoundShapes;
  /** the run, as RegisterReply carries it to every worker (run/spec-wire.ts) */
  readonly runSpec: RunSpec;
  /** HOST:PORT (port 0: any free one) */
  readonly listen: string;
  readonly security: TransportSecurity;
  readonly clusterToken?: string;
  /** files of worker identities: only these (allow), never these (deny, re-read when it changes) */
  readonly identities?: { readonly allowFile?: string; readonly denyFile?: string };
  /** absent: adapter versions go over gRPC only */
  readonly nats?: NatsOptions;
  readonly metrics: { readonly port: number; readonly host?: string };
  readonly minWorkers: number;
  /** the run's name, the `run` label of advclip_run_info (default: the method) */
  readonly run?: string;
  readonly heartbeatIntervalMs?: number;
  readonly deadline?: DeadlineOptions;
  readonly log: Logger;
}

const DRAIN_GRACE_MS = 10_000;

/** What a step cost, as the coordinator saw it: what advclip_step_seconds and (of its rounds) advclip_network_bytes_total count. */
export interface StepCosts extends Readonly<RoundCosts> {
  /** the step's time outside its rounds: averaging, the optimiser, the step loop */
  readonly updateMs: number;
  /** the size of the adapter version the step made; each worker fetches it once, from NATS or with GetAdapter */
  readonly adapterBytes: number;
}

export class Coordinator {
  #state: LifecycleState = 'starting';
  #stepStart = performance.now();
  #lastStepCosts: StepCosts | null = null;
  /** steps of the run, and wall seconds of the steps this process took, for advclip_eta_seconds */
  #iters = 0;
  #stepWalls = { seconds: 0, steps: 0 };
  #sweeper: NodeJS.Timeout | undefined;

  private constructor(
    readonly address: string,
    readonly metricsPort: number,
    readonly registry: WorkerRegistry,
    readonly metrics: CoordinatorMetrics,
    readonly metricsRegistry: Registry,
    private readonly executor: RemoteExecutor,
    private readonly versions: AdapterVersions,
    private readonly server: CoordinatorServer,
    private readonly http: HttpEndpoints,
    private readonly nats: NatsLink | null,
    private readonly publisher: AdapterPublisher | null,
    private readonly log: Logger,
  ) {}

  /**
   * Starts in an order that touches nothing shared before this process's own
   * inputs are good: TLS credentials (files read now), then metrics, NATS
   * (clearing an earlier run's adapter versions), the registry, executor
   * and gRPC server.
   */
  static async start(o: CoordinatorOptions): Promise<Coordinator> {
    const { log } = o;
    const credentials = serverCredentials(o.security, (m) => log.warn(m));
    const { metrics, metricsRegistry } = initialMetrics(o.spec, o.run);
    let current: Coordinator | null = null;
    const http = await startHttpEndpoints({
      host: o.metrics.host,
      port: o.metrics.port,
      registry: metricsRegistry,
      readiness: () => {
        const state = current?.state ?? 'starting';
        return { ready: state === 'ready', state };
      },
    });
    const cleanups: (() => Promise<void>)[] = [() => http.close()];
    try {
      const nats = await connectCoordinatorNats(o.nats, log);
      if (nats) cleanups.push(() => nats.close());
      const publisher = nats ? await openPublisher(nats, log) : null;
      const registry = new WorkerRegistry();
      const notice = versionNotice(nats);
      const versions = new AdapterVersions({
        publisher,
        natsLink: nats ? watchLinkState(nats, (m) => log.warn(m)) : undefined,
        warn: (m) => log.warn(m),
        onVersion: (blob, published) => {
          metrics.adapterVersion.set(blob.version);
          registry.broadcast(notice(blob, published));
        },
      });
      const executor = remoteExecutor(o, registry, versions, metrics);
      const isDone = () => current !== null && (current.state === 'draining' || current.state === 'stopped');
      registry.onEvent(registryEventHandler({ registry, versions, metrics, nats, log, notice, isDone }));
      const heartbeatIntervalMs = o.heartbeatIntervalMs ?? HEARTBEAT_INTERVAL_MS;
      const server = await serveWorkers(o, { credentials, nats, heartbeatIntervalMs, registry, versions, executor, metrics });
      log.info(`coordinator listening on ${server.address}`, { address: server.address, metrics: `http://${http.host}:${http.port}/metrics`, tls: o.security.mode });
      const c = new Coordinator(server.address, http.port, registry, metrics, metricsRegistry, executor, versions, server, http, nats, publisher, log);
      c.#iters = o.spec.iters;
      c.#sweeper = setInterval(() => registry.sweep(4 * heartbeatIntervalMs, (id) => executor.busy(id)), heartbeatIntervalMs);
      c.#sweeper.unref();
      current = c;
      c.#state = 'ready';
      return c;
    } catch (err) {
      for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
      throw err;
    }
  }

  get state(): LifecycleState {
    return this.#state;
  }

  /** Newest adapter version made available (0 before the first round). */
  get adapterVersion(): number {
    return this.versions.latest?.version ?? 0;
  }

  /**
   * Steps of states the step loop keeps (runSteps' rollbackWindow): a worker
   * caught by --verify-fraction's checks may have contributed unchecked
   * results that long ago, and the run goes back there.
   */
  get rollbackWindow(): number {
    return this.executor.rollbackWindow;
  }

  /** The step driver's executor: rounds go to the workers. */
  get execute(): Executor {
    return this.executor.execute;
  }

  /** What the last step done cost (null before the first). */
  get lastStepCosts(): StepCosts | null {
    return this.#lastStepCosts;
  }

  /** After each step: metrics, the new adapter version out, a step event. */
  async stepDone(report: StepReport, state: TrainState): Promise<void> {
    const m = this.metrics;
    m.loss.set({ kind: 'adv' }, report.loss);
    if (Number.isFinite(report.cleanLoss)) m.loss.set({ kind: 'clean' }, report.cleanLoss);
    m.gradNorm.set({ param: 'A' }, report.gradNorm.A);
    m.gradNorm.set({ param: 'B' }, report.gradNorm.B);
    m.gradNorm.set({ param: 'delta' }, report.gradNorm.delta);
    m.deltaLinf.set(report.deltaLinf);
    m.step.set(state.step);
    m.learningRate.set(report.lr);
    // Sums and a step count, so that rate(sum)/rate(steps) is the mean per step over any window, whatever the scrape interval.
    m.lossTotal.inc({ kind: 'adv' }, report.loss);
    if (Number.isFinite(report.cleanLoss)) m.lossTotal.inc({ kind: 'clean' }, report.cleanLoss);
    m.steps.inc();
    const t = this.executor.takeCosts();
    const wallMs = performance.now() - this.#stepStart;
    const updateMs = Math.max(0, wallMs - t.roundsMs);
    this.#stepWalls = { seconds: this.#stepWalls.seconds + wallMs / 1000, steps: this.#stepWalls.steps + 1 };
    m.etaSeconds.set(Math.max(0, this.#iters - state.step) * (this.#stepWalls.seconds / this.#stepWalls.steps));
    m.stepSeconds.observe({ phase: 'compute' }, t.computeMs / 1000);
    m.stepSeconds.observe({ phase: 'network' }, t.networkMs / 1000);
    m.stepSeconds.observe({ phase: 'wait' }, t.waitMs / 1000);
    m.stepSeconds.observe({ phase: 'update' }, updateMs / 1000);
    const adapter = await this.versions.ensure(state.lora, state.version);
    this.#lastStepCosts = Object.freeze({ ...t, updateMs, adapterBytes: adapter.bytes.byteLength });
    if (this.nats) publishEvent(this.nats, 'step', { step: state.step, adapter_version: state.version });
    this.#stepStart = performance.now();
  }

  /**
   * An evaluation during training is done: advclip_accuracy{attack}. Its
   * rounds' costs and time are not the next step's.
   */
  evaluated(e: EvaluationReport): void {
    this.metrics.accuracy.set({ attack: e.attack }, e.accuracy);
    this.executor.takeCosts();
    this.#stepStart = performance.now();
  }

  /** A checkpoint of `step` was written to `path`: logged, and a cluster event. */
  checkpointWritten(step: number, path: string): void {
    this.log.info(`checkpoint of step ${step} written`, { path });
    if (this.nats) publishEvent(this.nats, 'checkpoint', { step, path });
  }

  /** Fails the round in progress (e.g. every worker process of `advclip cluster` is gone). */
  abort(error: AdvclipError): void {
    this.executor.abort(error);
  }

  /** Takes no more steps from here (the caller's loop checks `state`). */
  startDraining(): void {
    if (this.#state === 'ready' || this.#state === 'starting') this.#state = 'draining';
    // a step that cannot finish for want of workers is given up, not waited on until the grace period's SIGKILL
    this.executor.drain();
  }

  /** Tells the workers to drain, waits for their streams to end (bounded), stops everything. */
  async close(reason = 'run finished'): Promise<void> {
    if (this.#state === 'stopped') return;
    this.startDraining();
    clearInterval(this.#sweeper);
    await this.registry.drainAll(reason, DRAIN_GRACE_MS);
    this.executor.close();
    await this.server.close(1_000);
    await this.publisher?.close();
    await this.nats?.close();
    this.#state = 'stopped';
    await this.http.close();
  }
}

/** The coordinator's metrics, at their values before the first step. */
function initialMetrics(spec: TrainSpec, run: string = spec.method): { metrics: CoordinatorMetrics; metricsRegistry: Registry } {
  const metricsRegistry = createMetricsRegistry();
  const metrics = createCoordinatorMetrics(metricsRegistry);
  metrics.epsilon.set(spec.epsilon);
  metrics.workers.set(0);
  metrics.waitingForWorkers.set(0);
  metrics.step.set(0);
  metrics.iters.set(spec.iters);
  metrics.runInfo.set({ run, method: spec.method, perturbation: spec.perturbation, sync: spec.sync }, 1);
  return { metrics, metricsRegistry };
}

type VersionNotice = (blob: AdapterBlob, onNats: boolean) => CoordinatorMessage;

/**
 * The AdapterVersion message of a version: a non-empty object name says it
 * is on NATS (inline in adapter.latest, or in the object store when too big
 * for one message); empty, workers fetch it with GetAdapter at once.
 */
const versionNotice =
  (nats: NatsLink | null): VersionNotice =>
  (blob, onNats) => ({
    adapter_version: { version: blob.version, sha256: blob.sha256, object: onNats && nats ? nats.subjects.adapterObject(blob.version) : '', size_bytes: blob.bytes.byteLength },
  });

/** The gRPC service workers register with and take tasks from; every message counted on the wire. */
function serveWorkers(
  o: CoordinatorOptions,
  c: { credentials: ServerCredentials; nats: NatsLink | null; heartbeatIntervalMs: number; registry: WorkerRegistry; versions: AdapterVersions; executor: RemoteExecutor; metrics: CoordinatorMetrics },
): Promise<CoordinatorServer> {
  return startCoordinatorServer({
    listen: o.listen,
    credentials: c.credentials,
    clusterToken: o.clusterToken,
    maxMessageBytes: maxMessageBytes(o.shapes, {
      image: Math.ceil(Math.min(o.spec.batchSize, o.setSize) / o.spec.chunkSize),
      text: textChunks(o.shapes.textFeatures[0]).length,
      samples: o.spec.batchSize,
    }),
    admission: o.identities ? new Admission({ ...o.identities, warn: (m) => o.log.warn(m) }) : undefined,
    runSpec: o.runSpec,
    natsUrl: c.nats ? o.nats!.url : '',
    natsCluster: o.nats?.cluster ?? '',
    heartbeatIntervalMs: c.heartbeatIntervalMs,
    registry: c.registry,
    versions: c.versions,
    executor: c.executor,
    onWire: (m) => {
      c.metrics.networkBytes.inc({ direction: m.direction, message: m.message }, m.bytes);
      c.executor.countWire(m);
    },
    warn: (m) => o.log.warn(m),
  });
}

/** The executor of the step driver's rounds, its events counted and logged. */
function remoteExecutor(o: CoordinatorOptions, registry: WorkerRegistry, versions: AdapterVersions, metrics: CoordinatorMetrics): RemoteExecutor {
  const { log } = o;
  return new RemoteExecutor({
    registry,
    versions,
    shapes: o.shapes,
    seed: o.spec.seed,
    minWorkers: o.minWorkers,
    deadline: o.deadline,
    verifyFraction: o.spec.verifyFraction,
    rollbackWindow: rollbackWindowFor(o.spec.verifyFraction, roundsPerStep(o.spec)),
    warn: (m, f) => log.warn(m, f),
    events: {
      accepted: (worker, samples) => metrics.workerSamples.inc({ worker }, samples),
      rejected: (worker, reason, badResults) => {
        metrics.rejectedResults.inc({ reason });
        log.warn(`rejected a result of worker ${worker}`, { reason, bad_results: badResults });
      },
      verified: (chunks) => metrics.verifyChecks.inc(chunks),
      caught: (worker, detail) => {
        metrics.verifyMismatches.inc({ worker });
        log.error(`worker ${worker} computed wrong results: quarantined`, { detail });
      },
      duplicated: (slow, idle, chunks) => log.info(`worker ${slow} is slow: its ${chunks} chunks sent to idle worker ${idle} too`, { slow, idle, chunks }),
      waiting: (waiting, live) => {
        metrics.waitingForWorkers.set(waiting ? 1 : 0);
        if (waiting) log.warn(`waiting for workers: ${live} live, --min-workers ${o.minWorkers}`);
        else log.info(`workers are back: ${live} live; continuing`);
      },
    },
  });
}

/** Joins and losses: the workers gauge, the newest version to a newcomer, a log line, a cluster event. */
function registryEventHandler(c: {
  registry: WorkerRegistry;
  versions: AdapterVersions;
  metrics: CoordinatorMetrics;
  nats: NatsLink | null;
  log: Logger;
  notice: VersionNotice;
  /** after the run (draining, stopped) workers leave as told: not a warning */
  isDone: () => boolean;
}): (e: RegistryEvent) => void {
  const { registry, versions, metrics, nats, log } = c;
  return (e) => {
    metrics.workers.set(registry.live().length);
    if (e.kind === 'joined') {
      const latest = versions.latest;
      if (latest && latest.version > 0) e.session.send(c.notice(latest, versions.onNats(latest.version)));
      log.info(`worker ${e.session.id} joined`, { identity: e.session.identity, backend: e.session.capabilities.backend, cores: e.session.capabilities.cores, live: registry.live().length });
      if (nats) publishEvent(nats, 'worker.joined', { worker_id: e.session.id, worker_name: e.session.name });
    } else {
      metrics.workerSamples.remove({ worker: e.session.id });
      if (e.excluded) metrics.workersExcluded.inc();
      const expected = c.isDone();
      (expected ? log.info : log.warn)(`worker ${e.session.id} ${expected ? 'left' : 'lost'}: ${e.reason}`, { live: registry.live().length });
      if (nats) publishEvent(nats, 'worker.lost', { worker_id: e.session.id, reason: e.reason });
    }
  };
}

/** The publisher, with what an earlier run left on NATS cleared (its `adapter.latest` would shadow this run's versions). */
async function openPublisher(nats: NatsLink, log: Logger): Promise<AdapterPublisher> {
  const publisher = await AdapterPublisher.open(nats, { log: (m) => log.warn(m) });
  await publisher.reset();
  log.info('cleared adapter.latest and the adapter blobs of any earlier run on NATS');
  return publisher;
}

async function connectCoordinatorNats(options: NatsOptions | undefined, log: Logger): Promise<NatsLink | null> {
  if (!options) {
    log.info('no --nats: adapter versions go over gRPC only');
    return null;
  }
  const link = await connectNats({ servers: options.url, user: options.user, password: options.password, cluster: options.cluster, name: 'advclip-coordinator', tls: options.tls });
  if (isNatsUnavailable(link)) {
    log.warn(`${link.error.message}; adapter versions go over gRPC only`);
    return null;
  }
  log.info(`NATS at ${options.url}: adapter versions published to JetStream`);
  return link;
}
