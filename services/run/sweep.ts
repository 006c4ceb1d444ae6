/**
 * A sweep (advclip sweep): many runs trained by one pool of workers
 * (sweep-pool.ts). Up to `concurrency` runs are active at once, each with
 * its own step driver — the step loop of `advclip train` — so a run of the
 * sweep ends with the adapter of the same run alone, bit for bit (exact
 * mode). Each run writes under `<out>/runs/<id>/` (adapter, train.json,
 * checkpoints/); started again, a sweep skips the runs whose train.json is
 * complete and resumes the others from their newest checkpoint. After every
 * run it rewrites `<out>/sweep.json` and `<out>/sweep.md`.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AdvclipError } from '../core/errors.ts';
import type { DeadlineOptions } from '../coordinator/remote-executor.ts';
import { ADAPTER_WEIGHTS_FILE } from '../io/peft.ts';
import { DrainReasons } from '../protocol/drain.ts';
import type { Logger } from '../protocol/log.ts';
import { drainOnSignals } from './signals.ts';
import { maxMessageBytes, roundShapes } from '../protocol/task-codec.ts';
import type { TransportSecurity } from '../protocol/tls.ts';
import { textChunks } from '../core/shard.ts';
import { startBackend } from './backend.ts';
import { checkpointingFrom } from './checkpointing.ts';
import { planRun, type RunPlan } from './prepare.ts';
import { absolutePaths } from './serve.ts';
import type { RunSpec } from './spec.ts';
import { encodeRunSpec } from './spec-wire.ts';
import type { FlagValue } from './sweep-grid.ts';
import { SweepPool } from './sweep-pool.ts';
import { sweepJson, sweepTables, type RunOutcome } from './sweep-report.ts';
import { finishedRun, runIdentity, runSteps, secondsPerStep, startingState, stepEvaluationOf, writeTrainOutputs } from './steps.ts';

/** One run of the sweep: its id, its RunSpec, and the flags it came from. */
export interface SweepRun {
  readonly id: string;
  readonly run: RunSpec;
  readonly flags: Readonly<Record<string, FlagValue>>;
  readonly varied: Readonly<Record<string, FlagValue>>;
}

export interface SweepOptions {
  readonly runs: readonly SweepRun[];
  /** results directory: runs/<id>/, sweep.json, sweep.md */
  readonly out: string;
  /** runs active at once (default: from the workers expected, see defaultConcurrency) */
  readonly concurrency?: number;
  /** the grid file, recorded in sweep.json */
  readonly grid: string;
  readonly backend?: string;
  readonly listen: string;
  readonly security: TransportSecurity;
  readonly clusterToken?: string;
  readonly identities?: { readonly allowFile?: string; readonly denyFile?: string };
  readonly metrics: { readonly port: number; readonly host?: string };
  readonly deadline: DeadlineOptions;
  readonly heartbeatIntervalMs: number;
  /** steps between a run's checkpoints (one more at its end or when the sweep drains) */
  readonly checkpointEvery: number;
}

export interface SweepHooks {
  /** once the pool listens (a local pool starts its workers here) */
  readonly onListening?: (pool: SweepPool) => Promise<void> | void;
  /** workers the pool will have, for the default concurrency */
  readonly workers?: number;
  /** after each run ends (done, failed or interrupted) */
  readonly onRunEnd?: (outcome: RunOutcome, pool: SweepPool) => Promise<void> | void;
}

export interface SweepSummary {
  readonly out: string;
  readonly runs: number;
  readonly done: number;
  readonly skipped: number;
  readonly failed: number;
  readonly concurrency: number;
  readonly seconds: number;
  /** runs trained by this invocation per hour of its wall time (skipped ones not counted) */
  readonly runs_per_hour: number | null;
  /** steps/s of each run trained here: min, max and their ratio (how evenly the pool served the active runs) */
  readonly steps_per_second: { readonly min: number; readonly max: number; readonly spread: number } | null;
}

/**
 * Runs active at once by default: enough to keep every worker busy — a
 * run's round has `chunks` chunks, so ceil(workers / chunks) runs fill the
 * pool, and one more covers a run's time outside its rounds — at least 2.
 */
export const defaultConcurrency = (workers: number, chunks: number): number => Math.max(2, Math.ceil(workers / Math.max(1, chunks)) + 1);

/** The run's output directory under the sweep's. */
export const runDir = (out: string, id: string): string => join(out, 'runs', id);

export async function runSweep(o: SweepOptions, log: Logger, hooks: SweepHooks = {}): Promise<SweepSummary> {
  if (!o.runs.length) throw new AdvclipError('INVALID_ARGUMENT', 'the sweep has no runs');
  const backend = await startBackend(o.backend, log);
  await mkdir(o.out, { recursive: true });
  const started = performance.now();
  const outcomes = new Map<string, RunOutcome>();
  const plans = new Map<string, RunPlan>();
  for (const r of o.runs) {
    const outcome = await finishedOutcome(o.out, r);
    if (outcome) outcomes.set(r.id, outcome);
    else plans.set(r.id, await planRun(absolutePaths(r.run), log.child({ run: r.id })));
  }
  const skipped = outcomes.size;
  if (skipped) log.info(`${skipped} of ${o.runs.length} runs finished earlier: skipped`, { runs: [...outcomes.keys()] });
  const todo = o.runs.filter((r) => plans.has(r.id));
  const chunks = Math.min(...[...plans.values()].map((p) => Math.ceil(Math.min(p.spec.batchSize, p.trainSet.length) / p.spec.chunkSize)), Infinity);
  const concurrency = o.concurrency ?? defaultConcurrency(hooks.workers ?? 1, Number.isFinite(chunks) ? chunks : 1);
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new AdvclipError('INVALID_ARGUMENT', `--concurrency must be ≥ 1, got ${concurrency}`);
  const write = () => writeResults(o, outcomesInOrder(o, outcomes), { concurrency, seconds: (performance.now() - started) / 1000 });
  const rates: number[] = [];
  if (todo.length) {
    const pool = await SweepPool.start({
      listen: o.listen,
      security: o.security,
      clusterToken: o.clusterToken,
      identities: o.identities,
      metrics: o.metrics,
      maxMessageBytes: Math.max(...[...plans.values()].map(messageBytesOf)),
      heartbeatIntervalMs: o.heartbeatIntervalMs,
      deadline: o.deadline,
      log,
    });
    const stopOnSignals = drainOnSignals(log, 'each active run finishes its step, writes its outputs and a checkpoint; no new runs start', () => pool.startDraining());
    const counts = () => {
      const all = [...outcomes.values()];
      pool.sweepMetrics.runs.set({ state: 'done' }, all.filter((x) => x.status === 'done').length);
      pool.sweepMetrics.runs.set({ state: 'failed' }, all.filter((x) => x.status === 'failed').length);
      pool.sweepMetrics.runs.set({ state: 'active' }, pool.openRuns.length);
      pool.sweepMetrics.runs.set({ state: 'pending' }, o.runs.length - all.length - pool.openRuns.length);
    };
    try {
      counts();
      await hooks.onListening?.(pool);
      log.info(`sweep of ${o.runs.length} runs (${todo.length} to train), ${concurrency} at once`, { out: o.out, concurrency });
      const trainStarted = performance.now();
      let next = 0;
      let trained = 0;
      const slot = async (): Promise<void> => {
        while (next < todo.length && pool.state === 'ready') {
          const r = todo[next++];
          const outcome = await trainRun(pool, o, r, plans.get(r.id)!, backend.name, log.child({ run: r.id }), rates).catch(
            (err): RunOutcome => ({ id: r.id, status: 'failed', flags: r.flags, varied: r.varied, out: runDir(o.out, r.id), error: (err as Error).message }),
          );
          outcomes.set(r.id, outcome);
          counts();
          if (outcome.status === 'failed') log.error(`run ${r.id} failed: ${outcome.error}`);
          if (outcome.status === 'done') trained++;
          const elapsed = (performance.now() - trainStarted) / 1000;
          const left = todo.length - next + pool.openRuns.length;
          log.info(`sweep: ${[...outcomes.values()].filter((x) => x.status === 'done').length}/${o.runs.length} runs done`, {
            run: r.id,
            status: outcome.status,
            eta_s: trained ? Math.round((elapsed / trained) * left) : null,
          });
          await write();
          await hooks.onRunEnd?.(outcome, pool);
        }
      };
      await Promise.all(Array.from({ length: Math.min(concurrency, todo.length) }, slot));
    } finally {
      stopOnSignals();
      const interrupted = o.runs.some((r) => !outcomes.has(r.id) || outcomes.get(r.id)!.status === 'pending');
      await pool.close(interrupted ? DrainReasons.coordinatorStopping : DrainReasons.runFinished);
    }
  }
  const seconds = (performance.now() - started) / 1000;
  const final = outcomesInOrder(o, outcomes);
  await writeResults(o, final, { concurrency, seconds });
  const done = final.filter((x) => x.status === 'done').length;
  const trainedHere = done - final.filter((x) => x.skipped).length;
  return {
    out: o.out,
    runs: o.runs.length,
    done,
    skipped,
    failed: final.filter((x) => x.status === 'failed').length,
    concurrency,
    seconds,
    runs_per_hour: trainedHere > 0 ? (3600 * trainedHere) / seconds : null,
    steps_per_second: rates.length ? { min: Math.min(...rates), max: Math.max(...rates), spread: Math.max(...rates) / Math.min(...rates) } : null,
  };
}

/** The largest gRPC message of a run (its tasks, results, adapter versions). */
function messageBytesOf(plan: RunPlan): number {
  const shapes = roundShapes(plan.dir.config, plan.initial.sites, plan.spec.lora.rank, plan.dataset.classNames.length);
  return maxMessageBytes(shapes, {
    image: Math.ceil(Math.min(plan.spec.batchSize, plan.trainSet.length) / plan.spec.chunkSize),
    text: textChunks(shapes.textFeatures[0]).length,
    samples: plan.spec.batchSize,
  });
}

/**
 * One run on the pool: resumed from its newest checkpoint, trained by the
 * step loop of `advclip train`, its outputs written as `advclip train`
 * writes them. Stopped by a drain, it writes its outputs for the steps done
 * and a checkpoint, and is `pending`.
 */
async function trainRun(pool: SweepPool, o: SweepOptions, r: SweepRun, plan: RunPlan, backendName: string, log: Logger, rates: number[]): Promise<RunOutcome> {
  const out = runDir(o.out, r.id);
  const identity = await runIdentity(plan);
  const checkpoints = checkpointingFrom({ dir: join(out, 'checkpoints'), every: o.checkpointEvery, keep: 2 }, identity, plan.initial, log);
  const state = await startingState(plan, checkpoints);
  if (await finishedRun(out, plan, state, log)) return (await finishedOutcome(o.out, r, false))!;
  const shapes = roundShapes(plan.dir.config, plan.initial.sites, plan.spec.lora.rank, plan.dataset.classNames.length);
  const handle = pool.openRun({ id: r.id, spec: plan.spec, shapes, runSpec: encodeRunSpec({ spec: plan.run, modelSha256: identity.modelSha256, trainSetSha256: identity.trainSetSha256 }) });
  log.info(`run ${r.id}: training ${plan.spec.method} from step ${state.step} of ${plan.spec.iters}`);
  const firstStep = state.step;
  const started = performance.now();
  try {
    const history = await runSteps(state, plan.spec, plan.trainSet.length, handle.execute, log, {
      json: false,
      progress: false,
      onStep: async (report, s) => {
        await handle.stepDone(report, s);
        await checkpoints.afterStep(s);
      },
      shouldStop: () => pool.state !== 'ready',
      evaluation: stepEvaluationOf(plan),
      rollbackWindow: handle.rollbackWindow,
    });
    const seconds = (performance.now() - started) / 1000;
    await checkpoints.final(state);
    await writeTrainOutputs(out, plan, state, history, {
      seconds,
      seconds_per_step: secondsPerStep(history, seconds),
      backend: backendName,
      sync: plan.spec.sync,
      workers: pool.registry.joinedEver,
      worker_backends: pool.registry.backendsJoined,
      run: r.id,
      resumed_from_step: firstStep,
    });
    if (history.length && seconds > 0) rates.push(history.length / seconds);
  } finally {
    handle.close();
  }
  if (state.step < plan.spec.iters) return { id: r.id, status: 'pending', flags: r.flags, varied: r.varied, out };
  return (await finishedOutcome(o.out, r, false))!;
}

/** What a run's train.json reports, when it is complete (its steps all done); null otherwise. */
async function finishedOutcome(sweepOut: string, r: SweepRun, skipped = true): Promise<RunOutcome | null> {
  const out = runDir(sweepOut, r.id);
  const train = await readFile(join(out, 'train.json'), 'utf8').then(
    (t) => JSON.parse(t) as { iters?: number; final?: { loss?: number } | null; seconds?: number; evaluations?: { attack: string; epsilon: number; n: number; accuracy: number }[] },
    () => null,
  );
  if (!train || train.iters !== r.run.train.iters) return null;
  const adapter = await readFile(join(out, ADAPTER_WEIGHTS_FILE)).catch(() => null);
  if (!adapter) return null;
  const last = train.evaluations?.at(-1);
  return {
    id: r.id,
    status: 'done',
    ...(skipped ? { skipped: true } : {}),
    flags: r.flags,
    varied: r.varied,
    out,
    adapterSha256: createHash('sha256').update(adapter).digest('hex'),
    finalLoss: train.final?.loss,
    ...(last ? { evaluation: { attack: last.attack, epsilon: last.epsilon, n: last.n, accuracy: last.accuracy } } : {}),
    seconds: train.seconds,
  };
}

const outcomesInOrder = (o: SweepOptions, outcomes: ReadonlyMap<string, RunOutcome>): RunOutcome[] =>
  o.runs.map((r) => outcomes.get(r.id) ?? { id: r.id, status: 'pending', flags: r.flags, varied: r.varied, out: runDir(o.out, r.id) });

async function writeResults(o: SweepOptions, runs: readonly RunOutcome[], extra: { concurrency: number; seconds: number }): Promise<void> {
  await writeFile(join(o.out, 'sweep.json'), JSON.stringify(sweepJson(runs, { grid: o.grid, ...extra }), null, 2) + '\n');
  await writeFile(join(o.out, 'sweep.md'), sweepTables(runs));
}
