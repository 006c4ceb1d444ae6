/**
 * One pool of workers for a whole sweep (advclip sweep), as Ray Tune runs
 * trials on one Ray cluster: one gRPC server and one WorkerRegistry; each
 * active run opens its own RemoteExecutor and AdapterVersions here. A Task
 * names its run (Task.run_id, and its id starts with `RUN/`), so results go
 * back to the run's executor; a worker fetches a run it does not hold with
 * GetRun. Every run's rounds go to the whole pool and a worker serves tasks
 * in arrival order, so the active runs interleave on every worker.
 *
 * Adapter versions of a sweep's runs go over gRPC (GetAdapter with the run
 * id), announced on the Work streams; they are not published to NATS.
 *
 * Lifecycle: starting → ready (listening, taking workers) → draining (no
 * new steps) → stopped.
 */
import type { ServerCredentials } from '@grpc/grpc-js';
import type { Registry } from 'prom-client';
import { AdapterVersions } from '../coordinator/adapter-versions.ts';
import { Admission } from '../coordinator/admission.ts';
import { DEFAULT_DEADLINE, RemoteExecutor, rollbackWindowFor, type DeadlineOptions } from '../coordinator/remote-executor.ts';
import { startCoordinatorServer, type CoordinatorServer } from '../coordinator/server.ts';
import { WorkerRegistry } from '../coordinator/worker-registry.ts';
import { AdvclipError } from '../core/errors.ts';
import type { TrainSpec } from '../core/train-spec.ts';
import { roundsPerStep, type Executor, type StepReport, type TrainState } from '../core/trainer.ts';
import type { RunSpec as RunSpecMessage } from '../protocol/generated/advclip/v1/RunSpec.ts';
import { HEARTBEAT_INTERVAL_MS } from '../protocol/grpc-options.ts';
import { startHttpEndpoints, type HttpEndpoints, type LifecycleState } from '../protocol/http-endpoints.ts';
import type { Logger } from '../protocol/log.ts';
import { createCoordinatorMetrics, createMetricsRegistry, createSweepMetrics, type CoordinatorMetrics, type SweepMetrics } from '../protocol/metrics.ts';
import type { RoundShapes } from '../protocol/task-codec.ts';
import { serverCredentials, type TransportSecurity } from '../protocol/tls.ts';
import { RUN_SPEC_VERSION } from './spec.ts';

export interface SweepPoolOptions {
  /** HOST:PORT (port 0: any free one) */
  readonly listen: string;
  readonly security: TransportSecurity;
  readonly clusterToken?: string;
  readonly identities?: { readonly allowFile?: string; readonly denyFile?: string };
  readonly metrics: { readonly port: number; readonly host?: string };
  /** the largest message of any run of the sweep (task-codec.ts maxMessageBytes) */
  readonly maxMessageBytes: number;
  readonly heartbeatIntervalMs?: number;
  readonly deadline?: DeadlineOptions;
  readonly log: Logger;
}

/** What a run of the sweep is, for the pool. */
export interface PoolRunOptions {
  /** the run id: Task.run_id, the `RUN/` prefix of its task ids, the `run` label */
  readonly id: string;
  readonly spec: TrainSpec;
  readonly shapes: RoundShapes;
  /** what GetRun answers (run/spec-wire.ts) */
  readonly runSpec: RunSpecMessage;
}

/** A run on the pool: its step driver's executor, and what it calls after each step. */
export interface PoolRun {
  readonly execute: Executor;
  /** steps of states runSteps keeps, so a worker caught by verification is taken back (runSteps' rollbackWindow) */
  readonly rollbackWindow: number;
  stepDone(report: StepReport, state: TrainState): Promise<void>;
  close(): void;
}

interface OpenRun {
  readonly runSpec: RunSpecMessage;
  readonly versions: AdapterVersions;
  readonly executor: RemoteExecutor;
}

const RUN_ID = /^[A-Za-z0-9_.-]{1,128}$/;
const DRAIN_GRACE_MS = 10_000;

export class SweepPool {
  #state: LifecycleState = 'starting';
  readonly #runs = new Map<string, OpenRun>();
  #sweeper: NodeJS.Timeout | undefined;
  #server: CoordinatorServer | null = null;
  #http: HttpEndpoints | null = null;
  /** idle workers listed first: a run's round gives its few chunks to the first workers listed (assign.ts), so runs spread over the pool */
  readonly registry = new WorkerRegistry({ order: (live) => [...live.filter((w) => !this.#busy(w.id)), ...live.filter((w) => this.#busy(w.id))] });
  readonly metricsRegistry: Registry = createMetricsRegistry();
  readonly metrics: CoordinatorMetrics = createCoordinatorMetrics(this.metricsRegistry);
  readonly sweepMetrics: SweepMetrics = createSweepMetrics(this.metricsRegistry);

  private constructor(private readonly o: SweepPoolOptions) {}

  /** TLS credentials first (files read now), then metrics, then the gRPC server. */
  static async start(o: SweepPoolOptions): Promise<SweepPool> {
    const pool = new SweepPool(o);
    const credentials = serverCredentials(o.security, (m) => o.log.warn(m));
    pool.metrics.workers.set(0);
    pool.metrics.runInfo.set({ run: 'sweep', method: 'sweep', perturbation: '', sync: '' }, 1);
    pool.#http = await startHttpEndpoints({ host: o.metrics.host, port: o.metrics.port, registry: pool.metricsRegistry, readiness: () => ({ ready: pool.#state === 'ready', state: pool.#state }) });
    try {
      pool.#server = await pool.#serve(credentials);
    } catch (err) {
      await pool.#http.close();
      throw err;
    }
    pool.registry.onEvent((e) => {
      pool.metrics.workers.set(pool.registry.live().length);
      if (e.kind === 'joined') o.log.info(`worker ${e.session.id} joined`, { live: pool.registry.live().length });
      else {
        pool.metrics.workerSamples.remove({ worker: e.session.id });
        (pool.#state === 'ready' ? o.log.warn : o.log.info)(`worker ${e.session.id} left: ${e.reason}`, { live: pool.registry.live().length });
      }
    });
    const heartbeat = o.heartbeatIntervalMs ?? HEARTBEAT_INTERVAL_MS;
    pool.#sweeper = setInterval(() => pool.registry.sweep(4 * heartbeat, (id) => pool.#busy(id)), heartbeat);
    pool.#sweeper.unref();
    o.log.info(`sweep coordinator listening on ${pool.address}`, { address: pool.address, metrics: `http://${pool.#http.host}:${pool.#http.port}/metrics`, tls: o.security.mode });
    pool.#state = 'ready';
    return pool;
  }

  get address(): string {
    return this.#server!.address;
  }

  get metricsPort(): number {
    return this.#http!.port;
  }

  get state(): LifecycleState {
    return this.#state;
  }

  /** Runs open now. */
  get openRuns(): string[] {
    return [...this.#runs.keys()];
  }

  /** Has the worker a task of any run out? */
  #busy(workerId: string): boolean {
    for (const r of this.#runs.values()) if (r.executor.busy(workerId)) return true;
    return false;
  }

  /** A run joins the pool: its rounds go to every live worker from now on. */
  openRun(r: PoolRunOptions): PoolRun {
    if (!RUN_ID.test(r.id)) throw new AdvclipError('INVALID_ARGUMENT', `run id "${r.id}" must be 1-128 characters of A-Z a-z 0-9 _ . -`);
    if (this.#runs.has(r.id)) throw new AdvclipError('INTERNAL', `run ${r.id} is already open`);
    const { log } = this.o;
    const versions = new AdapterVersions({
      publisher: null,
      warn: (m) => log.warn(`run ${r.id}: ${m}`),
      onVersion: (blob) => this.registry.broadcast({ adapter_version: { version: blob.version, sha256: blob.sha256, object: '', size_bytes: blob.bytes.byteLength, run_id: r.id } }),
    });
    const executor = new RemoteExecutor({
      registry: this.registry,
      versions,
      shapes: r.shapes,
      seed: r.spec.seed,
      minWorkers: 1,
      // no speculative duplicates: a sweep's tasks queue behind other runs' at a
      // worker, so "late" means "busy for another run", and an idle worker of this
      // run's view may be computing for a third one
      deadline: { ...(this.o.deadline ?? DEFAULT_DEADLINE), duplicateFactor: 0 },
      verifyFraction: r.spec.verifyFraction,
      rollbackWindow: rollbackWindowFor(r.spec.verifyFraction, roundsPerStep(r.spec)),
      runId: r.id,
      warn: (m, f) => log.warn(`run ${r.id}: ${m}`, f),
      events: {
        accepted: (worker, samples) => this.metrics.workerSamples.inc({ worker }, samples),
        rejected: (worker, reason, badResults) => {
          this.metrics.rejectedResults.inc({ reason });
          log.warn(`run ${r.id}: rejected a result of worker ${worker}`, { reason, bad_results: badResults });
        },
        verified: (chunks) => this.metrics.verifyChecks.inc(chunks),
        caught: (worker, detail) => {
          this.metrics.verifyMismatches.inc({ worker });
          log.error(`worker ${worker} computed wrong results: quarantined`, { detail });
        },
        duplicated: (slow, idle, chunks) => log.info(`run ${r.id}: worker ${slow} is slow: its ${chunks} chunks sent to idle worker ${idle} too`),
        waiting: (waiting, live) => {
          this.metrics.waitingForWorkers.set(waiting ? 1 : 0);
          if (waiting) log.warn(`run ${r.id}: waiting for workers (${live} live)`);
        },
      },
    });
    this.#runs.set(r.id, { runSpec: r.runSpec, versions, executor });
    const m = this.sweepMetrics;
    m.runIters.set({ run: r.id }, r.spec.iters);
    return {
      execute: executor.execute,
      rollbackWindow: executor.rollbackWindow,
      stepDone: async (report, state) => {
        m.runStep.set({ run: r.id }, state.step);
        m.runSteps.inc({ run: r.id });
        m.runLoss.set({ run: r.id, kind: 'adv' }, report.loss);
        if (Number.isFinite(report.cleanLoss)) m.runLoss.set({ run: r.id, kind: 'clean' }, report.cleanLoss);
        executor.takeCosts();
        await versions.ensure(state.lora, state.version);
      },
      close: () => {
        executor.close();
        this.#runs.delete(r.id);
      },
    };
  }

  /** Fails every open run's round in progress (e.g. every worker process is gone). */
  abort(error: AdvclipError): void {
    for (const r of this.#runs.values()) r.executor.abort(error);
  }

  /** No new steps (the runs' loops check `state`); a step waiting for workers is given up. */
  startDraining(): void {
    if (this.#state === 'ready' || this.#state === 'starting') this.#state = 'draining';
    for (const r of this.#runs.values()) r.executor.drain();
  }

  /** Tells the workers to drain, waits for their streams to end (bounded), stops everything. */
  async close(reason = 'sweep finished'): Promise<void> {
    if (this.#state === 'stopped') return;
    this.startDraining();
    clearInterval(this.#sweeper);
    await this.registry.drainAll(reason, DRAIN_GRACE_MS);
    for (const r of this.#runs.values()) r.executor.close();
    this.#runs.clear();
    await this.#server?.close(1_000);
    this.#state = 'stopped';
    await this.#http?.close();
  }

  #serve(credentials: ServerCredentials): Promise<CoordinatorServer> {
    const o = this.o;
    const runOf = (taskId: string) => {
      const slash = taskId.indexOf('/');
      return slash > 0 ? this.#runs.get(taskId.slice(0, slash)) : undefined;
    };
    return startCoordinatorServer({
      listen: o.listen,
      credentials,
      clusterToken: o.clusterToken,
      maxMessageBytes: o.maxMessageBytes,
      admission: o.identities ? new Admission({ ...o.identities, warn: (m) => o.log.warn(m) }) : undefined,
      // no run of its own: only the RunSpec version is checked at Register
      runSpec: { spec_version: RUN_SPEC_VERSION },
      natsUrl: '',
      natsCluster: '',
      heartbeatIntervalMs: o.heartbeatIntervalMs ?? HEARTBEAT_INTERVAL_MS,
      registry: this.registry,
      versions: { get: () => undefined, latest: null },
      // a result of a run no longer open: nobody waits for it
      executor: { onResult: () => undefined, onError: () => undefined },
      runs: {
        runSpec: (id) => this.#runs.get(id)?.runSpec,
        versions: (id) => this.#runs.get(id)?.versions,
        executorOf: (taskId) => runOf(taskId)?.executor,
      },
      onWire: (m) => {
        this.metrics.networkBytes.inc({ direction: m.direction, message: m.message }, m.bytes);
      },
      warn: (m) => o.log.warn(m),
    });
  }
}
