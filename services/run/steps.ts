/**
 * The step loop of a run and its outputs: `runSteps` drives trainStep
 * through any executor (in this process, or the coordinator's workers) with
 * progress and per-step JSON lines; `writeTrainOutputs` writes the PEFT
 * adapter and train.json; `trainInProcess` is `advclip train`'s whole run.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { AdvclipError } from '../core/errors.ts';
import { evaluationRound, type EvaluationReport } from '../core/eval-round.ts';
import { localExecutor } from '../core/local-executor.ts';
import { ShardComputer } from '../core/shard.ts';
import type { TrainSpec } from '../core/train-spec.ts';
import { initTrainState, RollBack, StepAbandoned, trainStep, type Executor, type StepReport, type TrainState } from '../core/trainer.ts';
import { modelSha256, trainSetSha256 } from '../io/model-hash.ts';
import { saveAdapter } from '../io/peft.ts';
import type { Logger } from '../protocol/log.ts';
import { startBackend } from './backend.ts';
import { checkpointingFrom, type Checkpointing, type CheckpointOptions } from './checkpointing.ts';
import { prepareRun, type RunPlan, type TrainingSetup } from './prepare.ts';
import { createProgress } from './progress.ts';
import { evaluationDue, type EvaluationSpec, type RunSpec } from './spec.ts';
import { StateHistory } from './state-history.ts';

export interface TrainSummary {
  readonly out: string;
  readonly method: string;
  readonly iters: number;
  readonly final: { loss: number; clean_loss: number } | null;
  readonly seconds: number;
  readonly seconds_per_step: number | null;
}

/** A step's report, its wall time, and the evaluation made after it (when one was due). */
export interface TimedStep extends StepReport {
  readonly seconds: number;
  readonly evaluation?: TimedEvaluation;
}

/** An evaluation and its wall time. */
export interface TimedEvaluation extends EvaluationReport {
  readonly seconds: number;
}

/** Wall seconds per step of a run that took `seconds`, its evaluations' time left out. */
export function secondsPerStep(history: readonly TimedStep[], seconds: number): number | null {
  if (!history.length) return null;
  const evaluating = history.reduce((t, h) => t + (h.evaluation?.seconds ?? 0), 0);
  return (seconds - evaluating) / history.length;
}

/** Evaluation during training: the run's settings, and the size of its test subset. */
export interface StepEvaluation {
  readonly spec: EvaluationSpec;
  readonly n: number;
}

/** The evaluations of a plan, for runSteps; null when it does not evaluate. */
export const stepEvaluationOf = (plan: RunPlan): StepEvaluation | null => (plan.evalSet.length ? { spec: plan.run.evaluation, n: plan.evalSet.length } : null);

/** Runs the steps through an executor, with progress and per-step JSON lines; the shared loop of train and coordinator. */
export async function runSteps(
  state: TrainState,
  spec: TrainSpec,
  setSize: number,
  execute: Executor,
  log: Logger,
  opts: {
    json: boolean;
    /** the progress bar or log lines (default: unless json); a sweep reports its own */
    progress?: boolean;
    onStep?: (r: StepReport, state: TrainState) => Promise<void> | void;
    shouldStop?: () => boolean;
    /** EVAL rounds through the same executor after every `every`-th step and the last */
    evaluation?: StepEvaluation | null;
    onEvaluation?: (e: EvaluationReport) => void;
    /** steps of starting states kept, for an executor's RollBack (0: none; a RollBack fails the run) */
    rollbackWindow?: number;
  },
): Promise<TimedStep[]> {
  const history: TimedStep[] = [];
  const progress = createProgress(spec.method, spec.iters, log, { enabled: opts.progress ?? !opts.json });
  const states = new StateHistory(opts.rollbackWindow ?? 0);
  progress.update(state.step);
  while (state.step < spec.iters && !opts.shouldStop?.()) {
    const started = performance.now();
    states.keep(state);
    const taken = await trainStep(state, spec, setSize, execute).catch((err: unknown) => {
      if (err instanceof StepAbandoned) {
        log.warn(`${err.message}: stopping after step ${state.step}`);
        return 'abandoned' as const;
      }
      if (!(err instanceof RollBack)) throw err;
      rollBack(state, states, err, log);
      return null;
    });
    if (taken === 'abandoned') break;
    if (!taken) {
      // the reports of the steps taken back are replaced by those of the steps taken again
      const undone = history.findIndex((h) => h.step >= state.step);
      if (undone >= 0) history.splice(undone);
      progress.update(state.step);
      continue;
    }
    const step = { ...taken, seconds: (performance.now() - started) / 1000 };
    await opts.onStep?.(step, state);
    // after the step's own bookkeeping, so that an evaluation's time is not the step's
    const e = opts.evaluation;
    const evalStarted = performance.now();
    const evaluated =
      e && evaluationDue(e.spec, state.step, spec.iters)
        ? await evaluationRound(state, { attack: e.spec.attack, epsilon: e.spec.epsilon, n: e.n, chunkSize: spec.chunkSize }, execute).catch((err: unknown) => {
            if (!(err instanceof StepAbandoned)) throw err;
            log.warn(`${err.message}: the evaluation after step ${state.step} is skipped`);
            return undefined;
          })
        : undefined;
    const evaluation = evaluated && { ...evaluated, seconds: (performance.now() - evalStarted) / 1000 };
    const report: TimedStep = { ...step, ...(evaluation ? { evaluation } : {}) };
    history.push(report);
    if (evaluation) opts.onEvaluation?.(evaluation);
    if (opts.json) process.stderr.write(JSON.stringify({ event: 'step', ...report }) + '\n');
    else if (evaluation) log.info(`accuracy after step ${evaluation.step}: ${(evaluation.accuracy * 100).toFixed(2)}%`, { attack: evaluation.attack, epsilon: evaluation.epsilon, n: evaluation.n });
    progress.update(state.step, {
      loss: report.loss.toFixed(3),
      ...(Number.isFinite(report.cleanLoss) && spec.method === 'advclip-lora' ? { clean: report.cleanLoss.toFixed(3) } : {}),
      ...(spec.perturbation === 'universal' && report.deltaLinf > 0 ? { 'δ∞': (report.deltaLinf * 255).toFixed(2) + '/255' } : {}),
      ...(evaluation ? { acc: evaluation.accuracy.toFixed(3) } : {}),
    });
  }
  progress.stop();
  return history;
}

/** `state` back where `err` asks (or as far as `states` go), with a warning for the steps that stay exposed. */
function rollBack(state: TrainState, states: StateHistory, err: RollBack, log: Logger): void {
  const from = state.step;
  const back = states.rollBack(state, err.toStep);
  if (!back) throw new AdvclipError('INTERNAL', `${err.message}, but no states are kept (rollback window ${states.window})`);
  log.warn(`back at step ${back.step} from step ${from} to take the steps again: ${err.reason}`, { to_step: back.step, from_step: from, adapter_version: state.version });
  if (back.exposed > 0) {
    log.warn(`steps ${err.toStep}–${back.step - 1} (${back.exposed}) may hold the caught worker's unchecked results: they are older than the rollback window of ${states.window} steps`, { exposed_steps: back.exposed });
  }
}

export async function writeTrainOutputs(out: string, setup: RunPlan, state: TrainState, history: readonly TimedStep[], extra: Record<string, unknown>): Promise<TrainSummary> {
  await mkdir(out, { recursive: true });
  await saveAdapter(out, state.lora, setup.dir.files.config.replace(/\/config\.json$/, ''), { advclip_step: String(state.step) });
  const last = history.at(-1);
  const summary = {
    out,
    method: setup.spec.method,
    iters: state.step,
    final: last ? { loss: last.loss, clean_loss: last.cleanLoss } : null,
    ...extra,
  };
  const trainJson = {
    ...summary,
    config: { ...setup.spec, classes: setup.dataset.classNames, train_images: setup.trainSet.length },
    history: history.map((h) => ({ step: h.step, loss: h.loss, clean_loss: h.cleanLoss, lr: h.lr, grad_norm: h.gradNorm, delta_linf: h.deltaLinf, lr_delta: h.lrDelta, seconds: h.seconds })),
    evaluations: history.flatMap((h) => (h.evaluation ? [evaluationJson(h.evaluation)] : [])),
  };
  await writeFile(join(out, 'train.json'), JSON.stringify(trainJson, null, 2) + '\n');
  return summary as TrainSummary;
}

/** An evaluation as train.json lists it: after `step` steps, `accuracy` of `n` test images under `attack` at `epsilon`. */
const evaluationJson = (e: TimedEvaluation) => ({ step: e.step, attack: e.attack, epsilon: e.epsilon, n: e.n, correct: e.correct, accuracy: e.accuracy, loss: e.loss, seconds: e.seconds });

export interface TrainedRun {
  readonly state: TrainState;
  readonly history: TimedStep[];
  readonly seconds: number;
}

/** The state a run starts from: its newest valid checkpoint's, or step 0. */
export async function startingState(plan: RunPlan, checkpoints: Checkpointing | null): Promise<TrainState> {
  const fresh = initTrainState(plan.spec, plan.initial);
  return checkpoints ? checkpoints.resume(fresh) : fresh;
}

/**
 * A run resumed at its last step has nothing to do. Its outputs, when `out`
 * has them, are left as they are (never rewritten with an empty history):
 * their summary. Without them, the checkpoint's adapter is written there.
 * null when the run has steps to go.
 */
export async function finishedRun(out: string, plan: RunPlan, state: TrainState, log: Logger): Promise<TrainSummary | null> {
  if (state.step === 0 || state.step < plan.spec.iters) return null;
  const written = await readFile(join(out, 'train.json'), 'utf8').then(
    (text) => JSON.parse(text) as Record<string, unknown>,
    () => null,
  );
  if (written) {
    log.info(`the run is already finished: its checkpoint is at step ${state.step} of ${plan.spec.iters}; nothing to do, ${out} is left as it is`, { step: state.step });
    const { config: _config, history: _history, evaluations: _evaluations, ...summary } = written;
    return summary as unknown as TrainSummary;
  }
  log.info(`the run is already finished: its checkpoint is at step ${state.step} of ${plan.spec.iters}; writing its adapter to ${out}`, { step: state.step });
  return writeTrainOutputs(out, plan, state, [], { seconds: 0, seconds_per_step: null });
}

/** Trains in this process on a prepared setup from `state` (step 0 by default), writing checkpoints when given. */
export async function trainInProcess(setup: TrainingSetup, log: Logger, json: boolean, checkpoints: Checkpointing | null = null, state = initTrainState(setup.spec, setup.initial)): Promise<TrainedRun> {
  const { spec } = setup;
  log.info(`training ${spec.method}`, { iters: spec.iters, batch: Math.min(spec.batchSize, setup.trainSet.length), tau: spec.tau, epsilon: spec.epsilon });
  const executor = localExecutor(new ShardComputer(setup.model, spec, setup.prompts, setup.source, setup.evaluation));
  const started = performance.now();
  try {
    const history = await runSteps(state, spec, setup.trainSet.length, executor.execute, log, {
      json,
      onStep: async (_r, s) => void (await checkpoints?.afterStep(s)),
      evaluation: stepEvaluationOf(setup),
    });
    await checkpoints?.final(state);
    return { state, history, seconds: (performance.now() - started) / 1000 };
  } finally {
    executor.dispose();
  }
}

/** What `advclip train` runs: a RunSpec and where its outputs go. */
export interface LocalTrainOptions {
  readonly run: RunSpec;
  readonly out: string;
  readonly backend?: string;
  readonly checkpoints: CheckpointOptions | null;
  /** a JSON line per step on stderr, no progress bar */
  readonly json: boolean;
}

/** A whole run in this process: prepare, (resume,) train, write the adapter and train.json; the summary. */
export async function trainLocally(o: LocalTrainOptions, log: Logger): Promise<TrainSummary> {
  const backend = await startBackend(o.backend, log);
  const setup = await prepareRun(o.run, backend, log);
  try {
    const checkpoints = o.checkpoints ? checkpointingFrom(o.checkpoints, await runIdentity(setup), setup.initial, log) : null;
    const resumed = await startingState(setup, checkpoints);
    const finished = await finishedRun(o.out, setup, resumed, log);
    if (finished) return finished;
    const { state, history, seconds } = await trainInProcess(setup, log, o.json, checkpoints, resumed);
    return await writeTrainOutputs(o.out, setup, state, history, {
      seconds,
      seconds_per_step: secondsPerStep(history, seconds),
      backend: backend.name,
      workers: 0,
    });
  } finally {
    setup.model.dispose();
    log.debug('tensors after training', { numTensors: tf.memory().numTensors });
  }
}

/** What a checkpoint belongs to: the training spec, the model's and the K-shot set's hashes. */
export async function runIdentity(plan: RunPlan): Promise<{ spec: TrainSpec; modelSha256: string; trainSetSha256: string }> {
  return { spec: plan.spec, modelSha256: await modelSha256(plan.dir.files), trainSetSha256: trainSetSha256(plan.dataset.root, plan.trainSet) };
}
