/**
 * `advclip coordinator`: the training of `advclip train`, with every round
 * computed by workers over gRPC. Writes the same outputs (the PEFT adapter
 * and train.json, with `workers`). SIGTERM/SIGINT drain: the step in
 * progress finishes, the outputs are written, workers are told to drain.
 * With --checkpoint-dir it resumes from the newest valid checkpoint and
 * writes one every --checkpoint-every steps and at the end.
 */
import { basename, isAbsolute, join, resolve } from 'node:path';
import { Coordinator } from '../coordinator/coordinator.ts';
import { DEFAULT_DEADLINE } from '../coordinator/remote-executor.ts';
import { invalidArgument } from '../core/errors.ts';
import { SyncModes, type SyncMode } from '../core/train-spec.ts';
import { initTrainState, type StepReport, type TrainState } from '../core/trainer.ts';
import { modelSha256, trainSetSha256 } from '../io/model-hash.ts';
import { modelReference } from '../io/model-dir.ts';
import { DrainReasons } from '../protocol/drain.ts';
import type { RunConfig } from '../protocol/run-config.ts';
import { roundShapes } from '../protocol/task-codec.ts';
import type { CommandSpec, FlagTable, FlagValues } from './args.ts';
import { checkpointFlags, checkpointingFrom } from './checkpointing.ts';
import type { Logger } from './log.ts';
import { planRun } from './run-setup.ts';
import { startBackend } from './runtime.ts';
import { runSteps, writeTrainOutputs, type TrainSummary } from './train.ts';
import { trainFlags, trainSpecFrom } from './train-flags.ts';
import { clusterTokenFrom, metricsFlags, natsCredentialsFromEnv, securityFrom, tlsFlags } from './transport-flags.ts';

/** Training flags plus the ones every distributed run has (coordinator and cluster). */
export const distributedTrainFlags: FlagTable = {
  ...trainFlags,
  sync: { type: 'string', default: 'exact', choices: SyncModes, help: 'exact: τ δ-rounds + 1 LoRA round per step; local-delta: each worker ascends its own δ (1 round)' },
  nats: { type: 'string', arg: 'URL', help: 'NATS server for adapter versions (credentials: env NATS_USER with NATS_PASSWORD or NATS_PASSWORD_FILE); without it adapters go over gRPC' },
  ...metricsFlags,
};

export const coordinatorFlags: FlagTable = {
  ...distributedTrainFlags,
  out: { ...trainFlags.out, required: false, help: 'where the PEFT adapter and train.json go (default CHECKPOINT_DIR/adapter)' },
  listen: { type: 'string', default: '127.0.0.1:50051', arg: 'HOST:PORT', help: 'gRPC address for workers (port 0: any free port; the bound one is logged)' },
  'min-workers': { type: 'int', default: 1, help: 'rounds wait until this many workers are live (advclip_waiting_for_workers = 1 meanwhile)' },
  ...tlsFlags,
  ...checkpointFlags,
  'checkpoint-dir': { ...checkpointFlags['checkpoint-dir'], help: `${checkpointFlags['checkpoint-dir'].help}; the default --out is DIR/adapter` },
  'task-deadline-ms': { type: 'int', default: DEFAULT_DEADLINE.minMs, arg: 'MS', help: 'advanced: shortest task deadline (a worker’s first task gets 10×); chunks not answered in time go to another worker, a late answer is discarded' },
  'task-deadline-factor': { type: 'number', default: DEFAULT_DEADLINE.factor, arg: 'F', help: 'advanced: a task’s deadline is at least F × the time the worker’s measured rate needs for its samples' },
  'heartbeat-ms': { type: 'int', default: 2_000, arg: 'MS', help: 'advanced: heartbeat interval workers are given; an idle worker silent for 4× that is dropped' },
};

export const coordinatorCommand: CommandSpec = {
  name: 'coordinator',
  summary: 'Coordinate a training run whose rounds workers compute (gRPC, adapter versions on NATS, Prometheus metrics)',
  usage: 'advclip coordinator --model DIR --data DIR [training flags of advclip train] [--sync exact|local-delta] [--listen HOST:PORT] [--nats URL] [--metrics-port 9464] [--min-workers N] (--tls-ca F --tls-cert F --tls-key F | --insecure) [--checkpoint-dir DIR [--checkpoint-every N]] --out ADAPTER_DIR',
  flags: coordinatorFlags,
};

/** Flags a worker must not take from the coordinator: outputs and this process's own settings. */
const LOCAL_ONLY = new Set(['out', 'json', 'backend', 'sync', 'nats', 'metrics-port', 'metrics-host', 'listen', 'min-workers', 'tls-ca', 'tls-cert', 'tls-key', 'insecure', 'cluster-token', 'cluster-token-file', 'checkpoint-dir', 'checkpoint-every', 'checkpoint-keep', 'task-deadline-ms', 'task-deadline-factor', 'heartbeat-ms']);

export interface ServeOptions {
  /** once the coordinator listens (cluster: start the workers here) */
  readonly onListening?: (coordinator: Coordinator) => Promise<void> | void;
  /** fields added to the summary (cluster: workers = N) */
  readonly summary?: Record<string, unknown>;
  /** NATS user/password (cluster: its own nats-server's coordinator user); default: env NATS_USER, NATS_PASSWORD */
  readonly natsCredentials?: { readonly user: string; readonly password: string };
  /** after each step, once its adapter version is out */
  readonly onStep?: (report: StepReport, state: TrainState, coordinator: Coordinator) => Promise<void> | void;
}

/** Runs a training through a coordinator and writes the outputs of `advclip train`. */
export async function serveTraining(flags: FlagValues, log: Logger, options: ServeOptions = {}): Promise<TrainSummary> {
  const spec = trainSpecFrom(flags, flags.sync as SyncMode);
  const out = (flags.out as string | undefined) ?? (flags['checkpoint-dir'] ? join(flags['checkpoint-dir'] as string, 'adapter') : undefined);
  if (!out) throw invalidArgument('advclip coordinator: --out (or --checkpoint-dir) is required (see --help)');
  const minWorkers = flags['min-workers'] as number;
  if (!Number.isInteger(minWorkers) || minWorkers < 1) throw invalidArgument(`--min-workers must be ≥ 1, got ${minWorkers}`);
  const security = securityFrom(flags);
  const backend = await startBackend(flags.backend, log);
  const setup = await planRun(flags, spec, log);
  const abs = (p: unknown) => (typeof p === 'string' && !isAbsolute(p) ? resolve(p) : p);
  const runFlags = Object.fromEntries(Object.entries(flags).filter(([k]) => !LOCAL_ONLY.has(k)));
  const runConfig: RunConfig = {
    flags: { ...runFlags, model: modelReference(flags.model as string), data: abs(flags.data), 'split-file': abs(flags['split-file']) } as RunConfig['flags'],
    sync: spec.sync,
    model_sha256: await modelSha256(setup.dir.files),
    train_set_sha256: trainSetSha256(setup.dataset.root, setup.trainSet),
  };
  const checkpoints = checkpointingFrom(flags, { spec, modelSha256: runConfig.model_sha256, trainSetSha256: runConfig.train_set_sha256 }, setup.initial, log);
  const state = (await checkpoints?.resume(initTrainState(spec, setup.initial))) ?? initTrainState(spec, setup.initial);
  const natsUrl = flags.nats as string | undefined;
  const deadlineMs = positiveInt(flags, 'task-deadline-ms');
  const coordinator = await Coordinator.start({
    spec,
    setSize: setup.trainSet.length,
    shapes: roundShapes(setup.dir.config, setup.initial.sites, spec.lora.rank, setup.dataset.classNames.length),
    runConfig,
    listen: flags.listen as string,
    security,
    clusterToken: clusterTokenFrom(flags),
    nats: natsUrl ? { url: natsUrl, ...(options.natsCredentials ?? natsCredentialsFromEnv()) } : undefined,
    metrics: { port: flags['metrics-port'] as number, host: flags['metrics-host'] as string },
    minWorkers,
    run: basename(out),
    deadline: { minMs: deadlineMs, factor: positiveNumber(flags, 'task-deadline-factor'), unmeasuredMs: 10 * deadlineMs },
    heartbeatIntervalMs: positiveInt(flags, 'heartbeat-ms'),
    log,
  });
  const drain = (signal: string) => {
    log.warn(`${signal}: finishing the step in progress, then writing outputs and draining the workers`);
    coordinator.startDraining();
  };
  const onTerm = () => drain('SIGTERM');
  const onInt = () => drain('SIGINT');
  process.once('SIGTERM', onTerm);
  process.once('SIGINT', onInt);
  try {
    await options.onListening?.(coordinator);
    log.info(`training ${spec.method} on the cluster`, { iters: spec.iters, sync: spec.sync, batch: Math.min(spec.batchSize, setup.trainSet.length), chunk: spec.chunkSize });
    const started = performance.now();
    const history = await runSteps(state, spec, setup.trainSet.length, coordinator.execute, log, {
      json: flags.json === true,
      onStep: async (report, s) => {
        await coordinator.stepDone(report, s);
        const path = await checkpoints?.afterStep(s);
        if (path) coordinator.checkpointWritten(s.step, path);
        await options.onStep?.(report, s, coordinator);
      },
      shouldStop: () => coordinator.state !== 'ready',
    });
    const seconds = (performance.now() - started) / 1000;
    const path = await checkpoints?.final(state);
    if (path) coordinator.checkpointWritten(state.step, path);
    const summary = await writeTrainOutputs(out, setup, state, history, {
      seconds,
      seconds_per_step: history.length ? seconds / history.length : null,
      backend: backend.name,
      sync: spec.sync,
      workers: coordinator.registry.joinedEver,
      worker_backends: coordinator.registry.backendsJoined,
      ...options.summary,
    });
    if (state.step < spec.iters) log.warn(`stopped after ${state.step} of ${spec.iters} steps; outputs written for the steps done`);
    return summary;
  } finally {
    process.removeListener('SIGTERM', onTerm);
    process.removeListener('SIGINT', onInt);
    await coordinator.close(state.step >= spec.iters ? DrainReasons.runFinished : DrainReasons.coordinatorStopping);
  }
}

function positiveNumber(flags: FlagValues, name: string): number {
  const value = flags[name] as number;
  if (!(value > 0)) throw invalidArgument(`--${name} must be > 0, got ${value}`);
  return value;
}

function positiveInt(flags: FlagValues, name: string): number {
  const value = flags[name] as number;
  if (!Number.isInteger(value) || value < 1) throw invalidArgument(`--${name} must be ≥ 1, got ${value}`);
  return value;
}

export async function runCoordinator(flags: FlagValues, _argv: readonly string[], log: Logger): Promise<void> {
  const summary = await serveTraining(flags, log);
  if (flags.json) process.stdout.write(JSON.stringify(summary) + '\n');
  else log.info(`wrote ${summary.out}`, { final_loss: summary.final?.loss });
}
