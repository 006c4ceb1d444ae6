/**
 * A run trained by workers: the coordinator service around the step loop of
 * `advclip train`, with the same outputs (the PEFT adapter and train.json,
 * with `workers`). SIGTERM/SIGINT drain: the step in progress finishes, the
 * outputs are written, workers are told to drain. With checkpoints it
 * resumes from the newest valid one; a run already at its last step
 * touches neither NATS nor its outputs. Its own inputs (output directory,
 * model, data, then TLS files) are checked before anything shared is.
 */
import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { basename, dirname, isAbsolute, resolve } from 'node:path';
import { Coordinator, type CoordinatorOptions } from '../coordinator/coordinator.ts';
import type { DeadlineOptions } from '../coordinator/remote-executor.ts';
import { invalidArgument } from '../core/errors.ts';
import type { StepReport, TrainState } from '../core/trainer.ts';
import { modelReference } from '../io/model-dir.ts';
import { DrainReasons } from '../protocol/drain.ts';
import type { Logger } from '../protocol/log.ts';
import { drainOnSignals } from './signals.ts';
import { roundShapes } from '../protocol/task-codec.ts';
import { startBackend } from './backend.ts';
import { checkpointingFrom, type Checkpointing, type CheckpointOptions } from './checkpointing.ts';
import { planRun, type RunPlan } from './prepare.ts';
import type { RunSpec } from './spec.ts';
import { encodeRunSpec } from './spec-wire.ts';
import { finishedRun, runIdentity, runSteps, secondsPerStep, startingState, stepEvaluationOf, writeTrainOutputs, type TimedStep, type TrainSummary } from './steps.ts';

/** Everything `advclip coordinator` runs: the RunSpec, this process's outputs and its transport (as the Coordinator service takes it). */
export interface CoordinatorRunOptions extends Pick<CoordinatorOptions, 'listen' | 'security' | 'clusterToken' | 'identities' | 'nats' | 'metrics' | 'minWorkers'> {
  readonly run: RunSpec;
  readonly out: string;
  readonly checkpoints: CheckpointOptions | null;
  /** a JSON line per step on stderr, no progress bar */
  readonly json: boolean;
  readonly backend?: string;
  readonly deadline: DeadlineOptions;
  readonly heartbeatIntervalMs: number;
}

export interface ServeHooks {
  /** once the coordinator listens (cluster: start the workers here) */
  readonly onListening?: (coordinator: Coordinator) => Promise<void> | void;
  /** fields added to the summary (cluster: workers = N) */
  readonly summary?: Record<string, unknown>;
  /** after each step, once its adapter version is out */
  readonly onStep?: (report: StepReport, state: TrainState, coordinator: Coordinator) => Promise<void> | void;
}

/** Runs a training through a coordinator and writes the outputs of `advclip train`; the summary. */
export async function serveTraining(o: CoordinatorRunOptions, log: Logger, hooks: ServeHooks = {}): Promise<TrainSummary> {
  const backend = await startBackend(o.backend, log);
  await checkOutputWritable(o.out);
  const plan = await planRun(absolutePaths(o.run), log);
  const identity = await runIdentity(plan);
  const checkpoints = o.checkpoints ? checkpointingFrom(o.checkpoints, identity, plan.initial, log) : null;
  const state = await startingState(plan, checkpoints);
  const finished = await finishedRun(o.out, plan, state, log);
  if (finished) return finished;
  const coordinator = await Coordinator.start({
    spec: plan.spec,
    setSize: plan.trainSet.length,
    shapes: roundShapes(plan.dir.config, plan.initial.sites, plan.spec.lora.rank, plan.dataset.classNames.length),
    runSpec: encodeRunSpec({ spec: plan.run, modelSha256: identity.modelSha256, trainSetSha256: identity.trainSetSha256 }),
    listen: o.listen,
    security: o.security,
    clusterToken: o.clusterToken,
    identities: o.identities,
    nats: o.nats,
    metrics: o.metrics,
    minWorkers: o.minWorkers,
    run: basename(o.out),
    deadline: o.deadline,
    heartbeatIntervalMs: o.heartbeatIntervalMs,
    log,
  });
  const stopOnSignals = drainOnSignals(log, 'finishing the step in progress, then writing outputs and draining the workers', () => coordinator.startDraining());
  try {
    await hooks.onListening?.(coordinator);
    log.info(`training ${plan.spec.method} on the cluster`, { iters: plan.spec.iters, sync: plan.spec.sync, batch: Math.min(plan.spec.batchSize, plan.trainSet.length), chunk: plan.spec.chunkSize });
    const started = performance.now();
    const history = await trainOnWorkers(coordinator, plan, state, checkpoints, o.json, log, hooks);
    const seconds = (performance.now() - started) / 1000;
    const path = await checkpoints?.final(state);
    if (path) coordinator.checkpointWritten(state.step, path);
    const summary = await writeTrainOutputs(o.out, plan, state, history, {
      seconds,
      seconds_per_step: secondsPerStep(history, seconds),
      backend: backend.name,
      sync: plan.spec.sync,
      workers: coordinator.registry.joinedEver,
      worker_backends: coordinator.registry.backendsJoined,
      ...hooks.summary,
    });
    if (state.step < plan.spec.iters) log.warn(`stopped after ${state.step} of ${plan.spec.iters} steps; outputs written for the steps done`);
    return summary;
  } finally {
    stopOnSignals();
    await coordinator.close(state.step >= plan.spec.iters ? DrainReasons.runFinished : DrainReasons.coordinatorStopping);
  }
}

/** Workers may mount the model and data elsewhere, but the coordinator's own paths travel absolute (a Hub repo id as it is). */
export function absolutePaths(run: RunSpec): RunSpec {
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(p));
  return { ...run, model: modelReference(run.model), data: { ...run.data, root: abs(run.data.root), splitFile: run.data.splitFile && abs(run.data.splitFile) } };
}

/** The output directory can be made and written: checked before anything is started or cleared. */
async function checkOutputWritable(out: string): Promise<void> {
  let dir = resolve(out);
  for (;;) {
    const s = await stat(dir).catch(() => null);
    if (s) {
      if (!s.isDirectory()) throw invalidArgument(`--out ${out}: ${dir} is not a directory`);
      await access(dir, constants.W_OK).catch(() => {
        throw invalidArgument(`--out ${out}: ${dir} is not writable`);
      });
      return;
    }
    if (dirname(dir) === dir) return;
    dir = dirname(dir);
  }
}

/** The step loop of `advclip train` with rounds on the workers: metrics, adapter versions and checkpoints after each step. */
function trainOnWorkers(coordinator: Coordinator, plan: RunPlan, state: TrainState, checkpoints: Checkpointing | null, json: boolean, log: Logger, hooks: ServeHooks): Promise<TimedStep[]> {
  return runSteps(state, plan.spec, plan.trainSet.length, coordinator.execute, log, {
    json,
    onStep: async (report, s) => {
      await coordinator.stepDone(report, s);
      const path = await checkpoints?.afterStep(s);
      if (path) coordinator.checkpointWritten(s.step, path);
      await hooks.onStep?.(report, s, coordinator);
    },
    shouldStop: () => coordinator.state !== 'ready',
    evaluation: stepEvaluationOf(plan),
    onEvaluation: (e) => coordinator.evaluated(e),
    rollbackWindow: coordinator.rollbackWindow,
  });
}
