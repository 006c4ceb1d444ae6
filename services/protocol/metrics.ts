/**
 * Every Prometheus metric advclip exports, named in one place.
 *
 * Each process owns one `Registry` (never prom-client's global default), so a
 * coordinator and its workers started in one test process do not collide.
 * The dashboard and the alert rules in deploy/ refer to these names; a test
 * checks them against a live scrape.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export const METRIC_PREFIX = 'advclip_' as const;

export const CoordinatorMetricNames = {
  loss: 'advclip_loss',
  gradNorm: 'advclip_grad_norm',
  deltaLinf: 'advclip_delta_linf',
  epsilon: 'advclip_epsilon',
  stepSeconds: 'advclip_step_seconds',
  workers: 'advclip_workers',
  adapterVersion: 'advclip_adapter_version',
  workerSamples: 'advclip_worker_samples_total',
  accuracy: 'advclip_accuracy',
  step: 'advclip_step',
  iters: 'advclip_iters',
  learningRate: 'advclip_learning_rate',
  etaSeconds: 'advclip_eta_seconds',
  lossTotal: 'advclip_loss_sum_total',
  steps: 'advclip_steps_total',
  runInfo: 'advclip_run_info',
  waitingForWorkers: 'advclip_waiting_for_workers',
  rejectedResults: 'advclip_rejected_results_total',
  workersExcluded: 'advclip_workers_excluded_total',
  networkBytes: 'advclip_network_bytes_total',
  verifyChecks: 'advclip_verify_checks_total',
  verifyMismatches: 'advclip_verify_mismatches_total',
} as const;

export const WorkerMetricNames = {
  computeSeconds: 'advclip_worker_compute_seconds',
  samplesProcessed: 'advclip_worker_samples_processed_total',
  errors: 'advclip_worker_errors_total',
  adapterVersion: 'advclip_worker_adapter_version',
} as const;

/**
 * A sweep's coordinator (advclip sweep) serves many runs from one pool: the
 * pool's series are the coordinator's (advclip_workers, network bytes, …),
 * and each run's progress is a series with a `run` label (its run id).
 */
export const SweepMetricNames = {
  runs: 'advclip_sweep_runs',
  runStep: 'advclip_sweep_run_step',
  runIters: 'advclip_sweep_run_iters',
  runLoss: 'advclip_sweep_run_loss',
  runSteps: 'advclip_sweep_run_steps_total',
} as const;

export type MetricName =
  | (typeof CoordinatorMetricNames)[keyof typeof CoordinatorMetricNames]
  | (typeof WorkerMetricNames)[keyof typeof WorkerMetricNames]
  | (typeof SweepMetricNames)[keyof typeof SweepMetricNames];

export const SweepRunStates = ['pending', 'active', 'done', 'failed'] as const;
export type SweepRunState = (typeof SweepRunStates)[number];

export const LossKinds = ['clean', 'adv'] as const;
export type LossKind = (typeof LossKinds)[number];
export const GradParams = ['A', 'B', 'delta'] as const;
export type GradParam = (typeof GradParams)[number];
export const StepPhases = ['compute', 'network', 'wait', 'update'] as const;
export type StepPhase = (typeof StepPhases)[number];
export const Attacks = ['none', 'fgsm', 'pgd'] as const;
export type Attack = (typeof Attacks)[number];

/** Seconds; a step on the small CLIP takes milliseconds, on a real one up to a minute. */
const DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

export interface CoordinatorMetrics {
  /** Label `kind`: one of `LossKinds`. */
  readonly loss: Gauge<'kind'>;
  /** Label `param`: one of `GradParams`. */
  readonly gradNorm: Gauge<'param'>;
  /** ‖δ‖∞ of the current perturbation; compared with `epsilon` by the saturation alert. */
  readonly deltaLinf: Gauge;
  readonly epsilon: Gauge;
  /** Label `phase`: one of `StepPhases`. */
  readonly stepSeconds: Histogram<'phase'>;
  readonly workers: Gauge;
  readonly adapterVersion: Gauge;
  /** Labelled by worker id; `remove({ worker })` when a worker leaves. */
  readonly workerSamples: Counter<'worker'>;
  /** Label `attack`: one of `Attacks`. */
  readonly accuracy: Gauge<'attack'>;
  readonly step: Gauge;
  /** Steps of the run (the target of advclip_step). */
  readonly iters: Gauge;
  /** Learning rate of the LoRA weights at the last step (the schedule's value). */
  readonly learningRate: Gauge;
  /** Seconds to the end of the run: steps left × mean step wall time so far in this process. */
  readonly etaSeconds: Gauge;
  /** Σ of the steps' mean losses, label `kind`; rate(advclip_loss_sum_total) / rate(advclip_steps_total) is the mean loss per step. */
  readonly lossTotal: Counter<'kind'>;
  readonly steps: Counter;
  /** 1, labelled with the run's name, method, perturbation and sync mode (the dashboard's `run` variable). */
  readonly runInfo: Gauge<'run' | 'method' | 'perturbation' | 'sync'>;
  /** 1 while fewer than `--min-workers` are live, else 0. */
  readonly waitingForWorkers: Gauge;
  /** Worker results the coordinator refused, by reason (e.g. `non_finite`, `stale_round`, `bad_shape`). */
  readonly rejectedResults: Counter<'reason'>;
  /** Workers dropped for sending too many bad results (see WorkerRegistry.flagBadResult). */
  readonly workersExcluded: Counter;
  /**
   * Protobuf bytes of the gRPC messages the coordinator sent and received (wire-meter.ts). Label
   * `direction`: one of `WireDirections`; `message`: the Work stream's message (`task`, `result`, …)
   * or the unary method (`get_adapter`, …).
   */
  readonly networkBytes: Counter<'direction' | 'message'>;
  /** Chunks recomputed on a second worker and compared (--verify-fraction). */
  readonly verifyChecks: Counter;
  /** Label `worker`: the worker whose result the deciding third computation contradicted (quarantined). */
  readonly verifyMismatches: Counter<'worker'>;
}

export interface SweepMetrics {
  /** Label `state`: one of `SweepRunStates`; runs of the sweep in each. */
  readonly runs: Gauge<'state'>;
  /** Label `run`: the last completed step of each run. */
  readonly runStep: Gauge<'run'>;
  readonly runIters: Gauge<'run'>;
  /** Labels `run`, `kind` (one of `LossKinds`): the mean loss of the run's last step. */
  readonly runLoss: Gauge<'run' | 'kind'>;
  readonly runSteps: Counter<'run'>;
}

export interface WorkerMetrics {
  readonly computeSeconds: Histogram;
  readonly samplesProcessed: Counter;
  /** Labelled by error kind (e.g. `unverified_adapter`, `compute`, `stream`). */
  readonly errors: Counter<'kind'>;
  readonly adapterVersion: Gauge;
}

/** A fresh registry with the Node process metrics (CPU, memory, event loop, GC) prefixed `advclip_`. */
export function createMetricsRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: METRIC_PREFIX });
  return registry;
}

export function createCoordinatorMetrics(registry: Registry): CoordinatorMetrics {
  const n = CoordinatorMetricNames;
  const registers = [registry];
  return Object.freeze({
    loss: new Gauge({ name: n.loss, help: 'Mean training loss of the last step', labelNames: ['kind'] as const, registers }),
    gradNorm: new Gauge({
      name: n.gradNorm,
      help: 'L2 norm of the averaged gradient of the last step',
      labelNames: ['param'] as const,
      registers,
    }),
    deltaLinf: new Gauge({ name: n.deltaLinf, help: 'L-infinity norm of the adversarial perturbation delta', registers }),
    epsilon: new Gauge({ name: n.epsilon, help: 'Perturbation budget epsilon (L-infinity radius of delta)', registers }),
    stepSeconds: new Histogram({
      name: n.stepSeconds,
      help: 'Wall time of one training step, by phase',
      labelNames: ['phase'] as const,
      buckets: DURATION_BUCKETS,
      registers,
    }),
    workers: new Gauge({ name: n.workers, help: 'Workers currently admitted and live', registers }),
    adapterVersion: new Gauge({ name: n.adapterVersion, help: 'Version of the latest published LoRA adapter', registers }),
    workerSamples: new Counter({
      name: n.workerSamples,
      help: 'Samples whose results the coordinator accepted, by worker',
      labelNames: ['worker'] as const,
      registers,
    }),
    accuracy: new Gauge({
      name: n.accuracy,
      help: 'Evaluation accuracy (0..1) of the latest evaluation, by attack',
      labelNames: ['attack'] as const,
      registers,
    }),
    step: new Gauge({ name: n.step, help: 'Index of the last completed training step', registers }),
    iters: new Gauge({ name: n.iters, help: 'Training steps of the run', registers }),
    learningRate: new Gauge({ name: n.learningRate, help: 'Learning rate of the LoRA weights at the last step', registers }),
    etaSeconds: new Gauge({ name: n.etaSeconds, help: 'Estimated seconds to the end of the run', registers }),
    lossTotal: new Counter({
      name: n.lossTotal,
      help: 'Sum over steps of the mean training loss; divide its rate by the rate of advclip_steps_total',
      labelNames: ['kind'] as const,
      registers,
    }),
    steps: new Counter({ name: n.steps, help: 'Training steps completed by this coordinator process', registers }),
    runInfo: new Gauge({
      name: n.runInfo,
      help: 'Always 1; its labels name the run',
      labelNames: ['run', 'method', 'perturbation', 'sync'] as const,
      registers,
    }),
    waitingForWorkers: new Gauge({
      name: n.waitingForWorkers,
      help: '1 while training waits for the minimum number of workers, else 0',
      registers,
    }),
    rejectedResults: new Counter({
      name: n.rejectedResults,
      help: 'Worker results refused by the coordinator, by reason',
      labelNames: ['reason'] as const,
      registers,
    }),
    workersExcluded: new Counter({ name: n.workersExcluded, help: 'Workers told to drain and dropped after too many bad results', registers }),
    verifyChecks: new Counter({ name: n.verifyChecks, help: 'Chunk results recomputed on a second worker and compared bit for bit', registers }),
    verifyMismatches: new Counter({ name: n.verifyMismatches, help: 'Chunk results found wrong by recomputation, by the worker that sent them (quarantined)', labelNames: ['worker'] as const, registers }),
    networkBytes: new Counter({
      name: n.networkBytes,
      help: 'Protobuf bytes of the gRPC messages sent to and received from workers, by direction and message',
      labelNames: ['direction', 'message'] as const,
      registers,
    }),
  });
}

export function createSweepMetrics(registry: Registry): SweepMetrics {
  const n = SweepMetricNames;
  const registers = [registry];
  return Object.freeze({
    runs: new Gauge({ name: n.runs, help: 'Runs of the sweep by state', labelNames: ['state'] as const, registers }),
    runStep: new Gauge({ name: n.runStep, help: 'Index of the last completed training step of each run of the sweep', labelNames: ['run'] as const, registers }),
    runIters: new Gauge({ name: n.runIters, help: 'Training steps of each run of the sweep', labelNames: ['run'] as const, registers }),
    runLoss: new Gauge({ name: n.runLoss, help: 'Mean training loss of the last step of each run of the sweep', labelNames: ['run', 'kind'] as const, registers }),
    runSteps: new Counter({ name: n.runSteps, help: 'Training steps completed, by run of the sweep', labelNames: ['run'] as const, registers }),
  });
}

export function createWorkerMetrics(registry: Registry): WorkerMetrics {
  const n = WorkerMetricNames;
  const registers = [registry];
  return Object.freeze({
    computeSeconds: new Histogram({
      name: n.computeSeconds,
      help: 'Wall time of computing one work item (forward, attack, backward)',
      buckets: DURATION_BUCKETS,
      registers,
    }),
    samplesProcessed: new Counter({ name: n.samplesProcessed, help: 'Samples this worker computed', registers }),
    errors: new Counter({
      name: n.errors,
      help: 'Errors this worker met, by kind',
      labelNames: ['kind'] as const,
      registers,
    }),
    adapterVersion: new Gauge({ name: n.adapterVersion, help: 'Adapter version this worker holds', registers }),
  });
}
