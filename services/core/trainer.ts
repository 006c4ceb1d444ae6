/**
 * The AdvCLIP-LoRA step driver (Algorithm 1), with the rounds of the
 * distributed semantics. It owns the step, the adapters, the optimiser
 * state, δ and the data cursor; an `Executor` computes rounds — in this
 * process, or sharded over workers — and returns chunk results in chunk
 * order, which are added in that order. So one process and N workers give
 * the same numbers.
 */
import { combine } from './aggregate.ts';
import type { ChunkResult, RoundKind, RoundTask } from './shard.ts';
import { addInto, ALL_CLASS_GROUPS, ascend, gradKeyA, gradKeyB } from './shard.ts';
import type { LoraWeights } from './lora.ts';
import { applyUpdate, initOptimizer, learningRate, type OptimizerState } from './optim.ts';
import { batchAt, chunksOf, effectiveBatchSize } from './sampling.ts';
import { failedPrecondition } from './errors.ts';
import { ascentSteps, calibratedLrDelta, calibratesLrDelta, type TrainSpec } from './train-spec.ts';
import type { HostTensor } from './tensor.ts';

export interface LocalDelta {
  readonly count: number;
  readonly delta: Float32Array;
}

/** One accepted result: the chunks one worker computed in one task, and its local δ. */
export interface Share {
  readonly worker: string;
  readonly chunks: readonly ChunkResult[];
  readonly localDelta: LocalDelta | null;
}

export interface ExecutedRound {
  /** every chunk once, in chunk order (empty for a replicated round: read `shares`) */
  readonly chunks: readonly ChunkResult[];
  readonly localDeltas: readonly LocalDelta[];
  /** who computed what, in chunk order; a replicated round: one share of every chunk per worker */
  readonly shares: readonly Share[];
}

export interface RoundOptions {
  /** every worker computes every chunk (robust aggregation of a round whose chunks no worker shares) */
  readonly replicated: boolean;
}

/** Computes a round at an adapter version. */
export type Executor = (task: RoundTask, adapter: LoraWeights, version: number, options?: RoundOptions) => Promise<ExecutedRound>;

export interface TrainState {
  /** steps done */
  step: number;
  /** bumps with every change of the adapters */
  version: number;
  lora: LoraWeights;
  readonly optimizer: OptimizerState;
  /** the universal δ, carried across minibatches ([S·S·3]) */
  delta: Float32Array | null;
  deltaEpoch: number;
  /** η_δ calibrated from the run's first mean δ-gradient (calibratesLrDelta); null before, or when not calibrated */
  calibratedLrDelta: number | null;
}

export interface StepReport {
  readonly step: number;
  readonly epoch: number;
  readonly lr: number;
  /** mean loss at the final δ (adv), and at δ = 0 (clean; NaN when not computed) */
  readonly loss: number;
  readonly cleanLoss: number;
  readonly gradNorm: { readonly A: number; readonly B: number; readonly delta: number };
  readonly deltaLinf: number;
  /** η_δ of this step's universal-δ ascent (the calibrated value when calibrated; 0 without one) */
  readonly lrDelta: number;
  readonly samples: number;
  readonly rounds: number;
}

export function initTrainState(spec: TrainSpec, lora: LoraWeights): TrainState {
  const sizes = lora.sites.flatMap((_, i) => [lora.a[i].data.length, lora.b[i].data.length]);
  return { step: 0, version: 0, lora, optimizer: initOptimizer(spec.optimizer, sizes), delta: null, deltaEpoch: 0, calibratedLrDelta: null };
}

/** Σ over chunks, in chunk order, of one named gradient. */
function chunkSum(chunks: readonly ChunkResult[], name: string): Float32Array {
  const ordered = [...chunks].sort((a, b) => a.index - b.index);
  const first = ordered[0]?.grads.get(name);
  if (!first) throw new Error(`internal: chunk results lack gradient "${name}"`);
  const acc = new Float32Array(first.length);
  for (const c of ordered) addInto(acc, c.grads.get(name)!);
  return acc;
}

const l2 = (xs: readonly Float32Array[]) => Math.sqrt(xs.reduce((s, x) => s + x.reduce((a, v) => a + v * v, 0), 0));
const linf = (x: Float32Array | null) => (x ? x.reduce((m, v) => Math.max(m, Math.abs(v)), 0) : 0);

/**
 * The optimiser's parameters are one list, [A₀, B₀, A₁, B₁, …] (its moments
 * and the checkpoints keep that order); Algorithm 1 updates two groups of
 * them, every A and every B. These are the groups' positions in the list.
 */
interface ParameterGroups {
  readonly A: readonly number[];
  readonly B: readonly number[];
}

const parameterGroups = (lora: LoraWeights): ParameterGroups => ({ A: lora.sites.map((_, i) => 2 * i), B: lora.sites.map((_, i) => 2 * i + 1) });

/** Copies of the adapter factors, in the optimiser's order. */
const parametersOf = (lora: LoraWeights): Float32Array[] => lora.sites.flatMap((_, i) => [Float32Array.from(lora.a[i].data), Float32Array.from(lora.b[i].data)]);

function withParameters(lora: LoraWeights, params: readonly Float32Array[], groups: ParameterGroups): LoraWeights {
  const tensor = (t: HostTensor, data: Float32Array): HostTensor => ({ shape: t.shape, data });
  return { ...lora, a: lora.a.map((t, i) => tensor(t, params[groups.A[i]])), b: lora.b.map((t, i) => tensor(t, params[groups.B[i]])) };
}

/** η_δ of this ascent step: --lr-delta, or the calibrated value, fixed at the first δ round of the run. */
function lrDeltaOf(state: TrainState, spec: TrainSpec, gradSum: Float32Array, count: number): number {
  if (!calibratesLrDelta(spec)) return spec.lrDelta;
  if (state.calibratedLrDelta === null) {
    if (state.step > 0) throw failedPrecondition(`the run is at step ${state.step} but has no calibrated η_δ (a checkpoint without it?): it is fixed at step 0`);
    state.calibratedLrDelta = calibratedLrDelta(spec, gradSum, count);
  }
  return state.calibratedLrDelta;
}


/**
 * An executor's word that results of this step's earlier rounds are not to
 * be trusted (a worker was caught returning wrong numbers): the step starts
 * again from its beginning, with the adapters, δ and optimiser it had.
 */
export class RedoStep extends Error {
  constructor(readonly reason: string) {
    super(`step to be redone: ${reason}`);
    this.name = 'RedoStep';
  }
}

/**
 * An executor's word that results of earlier steps are not to be trusted (a
 * worker caught returning wrong numbers contributed unchecked results to
 * them): the run goes back to the state before `toStep` and takes those
 * steps again without the worker (the step loop keeps the states: run/steps.ts).
 */
export class RollBack extends Error {
  constructor(
    readonly toStep: number,
    readonly reason: string,
  ) {
    super(`steps from ${toStep} to be taken again: ${reason}`);
    this.name = 'RollBack';
  }
}

/**
 * An executor's word that the step in progress cannot finish and the run is
 * stopping (drained while no worker is there to compute its rounds): the
 * state goes back to the step's start and the step loop ends there, so the
 * outputs and the last checkpoint hold whole steps only.
 */
export class StepAbandoned extends Error {
  constructor(readonly reason: string) {
    super(`step given up: ${reason}`);
    this.name = 'StepAbandoned';
  }
}

/** A copy of the state a step starts from: what the step reads and changes (the adapters are never changed in place). */
export type StateSnapshot = Readonly<Omit<TrainState, 'optimizer'>> & { readonly m: readonly Float32Array[]; readonly v: readonly Float32Array[] };

export const snapshotOf = (state: TrainState): StateSnapshot => ({
  step: state.step,
  version: state.version,
  lora: state.lora,
  delta: state.delta && state.delta.slice(),
  deltaEpoch: state.deltaEpoch,
  calibratedLrDelta: state.calibratedLrDelta,
  m: state.optimizer.m.map((x) => x.slice()),
  v: state.optimizer.v.map((x) => x.slice()),
});

/**
 * `state` back at `snapshot`, with a newer adapter version number than any
 * it made (versions only move forward: the same factors get a new number).
 */
export function restoreState(state: TrainState, snapshot: StateSnapshot): void {
  const newest = state.version;
  state.step = snapshot.step;
  state.lora = snapshot.lora;
  state.delta = snapshot.delta && snapshot.delta.slice();
  state.deltaEpoch = snapshot.deltaEpoch;
  state.calibratedLrDelta = snapshot.calibratedLrDelta;
  snapshot.m.forEach((x, i) => state.optimizer.m[i].set(x));
  snapshot.v.forEach((x, i) => state.optimizer.v[i].set(x));
  state.version = newest + 1;
}

/** The rounds of a step: τ δ-rounds (exact universal mode), the LoRA and the text round, and those two again under Gauss–Seidel. */
export function roundsPerStep(spec: TrainSpec): number {
  const deltaRounds = spec.perturbation === 'universal' && spec.sync === 'exact' ? ascentSteps(spec) : 0;
  return deltaRounds + (spec.loraUpdate === 'gauss-seidel' ? 4 : 2);
}

/** How many times one step may start again before the run fails. */
const MAX_REDOS = 3;

/** One training step (stepOnce), started again from the same state when the executor says RedoStep. */
export async function trainStep(state: TrainState, spec: TrainSpec, setSize: number, execute: Executor): Promise<StepReport> {
  const saved = snapshotOf(state);
  for (let redo = 0; ; redo++) {
    try {
      return await stepOnce(state, spec, setSize, execute);
    } catch (err) {
      if (err instanceof StepAbandoned) restoreState(state, saved);
      if (!(err instanceof RedoStep) || redo >= MAX_REDOS) throw err;
      // η_δ calibrated in the step being redone came from a round that is not trusted: it goes back too
      restoreState(state, saved);
    }
  }
}

/** One training step: τ ascent rounds on δ (or local/per-sample ascent), then the LoRA update. */
async function stepOnce(state: TrainState, spec: TrainSpec, setSize: number, execute: Executor): Promise<StepReport> {
  const t = state.step;
  const m = effectiveBatchSize(spec.batchSize, setSize);
  const plan = batchAt(t, setSize, spec.batchSize, spec.seed);
  const chunks = chunksOf(plan.samples, spec.chunkSize);
  const tau = ascentSteps(spec);
  const universal = spec.perturbation === 'universal' && tau > 0;
  if (spec.resetDeltaEachEpoch && plan.epoch !== state.deltaEpoch) state.delta = null;
  state.deltaEpoch = plan.epoch;
  let rounds = 0;
  const robust = spec.aggregation.rule !== 'mean';
  const run = async (kind: RoundKind, round: number, extra: Partial<RoundTask> = {}) => {
    rounds++;
    const task: RoundTask = { step: t, round, kind, chunks: kind === 'text' ? ALL_CLASS_GROUPS : chunks, delta: state.delta, textGrad: null, ...extra };
    return execute(task, state.lora, state.version, { replicated: robust && kind === 'text' });
  };
  // Σ over the minibatch of an image round's gradient; robust: each share's per-sample mean is one vote, scaled back to m samples
  const imageSum = (round: ExecutedRound, key: string): Float32Array => {
    if (!robust) return chunkSum(round.chunks, key);
    const counts = round.shares.map((s) => s.chunks.reduce((n, c) => n + c.count, 0));
    const means = round.shares.map((s, i) => chunkSum(s.chunks, key).map((v) => v / counts[i]));
    return combine(spec.aggregation, means, counts).map((v) => v * m);
  };
  // a text round: chunk sums; robust: every worker computed it all, the rule picks among their sums
  const textSum = (round: ExecutedRound, key: string): Float32Array =>
    robust ? combine(spec.aggregation, round.shares.map((s) => chunkSum(s.chunks, key)), round.shares.map(() => 1)) : chunkSum(round.chunks, key);

  let deltaGradNorm = 0;
  let lrDelta = 0;
  let loraRound: ExecutedRound;
  if (universal && spec.sync === 'exact') {
    for (let r = 0; r < tau; r++) {
      const res = await run('delta', r);
      const g = chunkSum(res.chunks, 'delta');
      deltaGradNorm = l2([g]) / m;
      lrDelta = lrDeltaOf(state, spec, g, m);
      state.delta = ascend(state.delta ?? new Float32Array(g.length), g, m, spec, lrDelta);
    }
    loraRound = await run('lora', tau);
  } else if (universal) {
    loraRound = await run('local-delta', tau);
    // federated: δ becomes the count-weighted mean of the workers' δ, or their robust combination (before any Gauss–Seidel round uses it)
    const deltas = loraRound.localDeltas;
    if (robust) {
      state.delta = combine(spec.aggregation, deltas.map((d) => d.delta), deltas.map((d) => d.count));
    } else {
      const total = deltas.reduce((n, d) => n + d.count, 0);
      const mean = new Float32Array(deltas[0].delta.length);
      for (const d of deltas) for (let j = 0; j < mean.length; j++) mean[j] += (d.delta[j] * d.count) / total;
      state.delta = mean;
    }
  } else {
    loraRound = await run('lora', tau);
  }

  const gradients = async (round: ExecutedRound) => {
    const text = await run('text', tau, { textGrad: imageSum(round, 'text_features'), delta: null });
    return state.lora.sites.flatMap((s) => {
      const source = (key: string) => (s.tower === 'text' ? textSum(text, key) : imageSum(round, key));
      return [gradKeyA(s.key), gradKeyB(s.key)].map((key) => source(key).map((v) => v / m));
    });
  };
  const grads = await gradients(loraRound);
  const groups = parameterGroups(state.lora);
  const params = parametersOf(state.lora);
  const lr = learningRate(spec.schedule, spec.lr, t, spec.iters);
  const update = { lr, weightDecay: spec.optimizer === 'adamw' ? spec.weightDecay : 0, t: t + 1 };
  let bGrads = grads;
  if (spec.loraUpdate === 'gauss-seidel') {
    // A ← A − η g_A, then g_B recomputed at the new A (same universal δ and samples; per-sample
    // mode re-runs its PGD at the new A, as the inner max of the new point), then B ← B − η g_B
    applyUpdate(state.optimizer, params, grads, { ...update, which: groups.A });
    state.lora = withParameters(state.lora, params, groups);
    state.version++;
    bGrads = await gradients(await run('lora', tau + 1, { delta: state.delta }));
    applyUpdate(state.optimizer, params, bGrads, { ...update, which: groups.B });
  } else {
    // Jacobi: A ← A − η g_A and B ← B − η g_B, both at W_{t-1}
    applyUpdate(state.optimizer, params, grads, { ...update, which: [...groups.A, ...groups.B] });
  }
  state.lora = withParameters(state.lora, params, groups);
  state.version++;

  state.step++;
  const sum = (f: (c: ChunkResult) => number) => loraRound.chunks.reduce((s, c) => s + f(c), 0);
  return {
    step: t,
    epoch: plan.epoch,
    lr,
    loss: sum((c) => c.advLossSum) / m,
    cleanLoss: sum((c) => c.cleanLossSum) / m,
    gradNorm: { A: l2(groups.A.map((i) => grads[i])), B: l2(groups.B.map((i) => bGrads[i])), delta: deltaGradNorm },
    deltaLinf: linf(state.delta),
    lrDelta: universal && spec.sync === 'local-delta' ? spec.lrDelta : lrDelta,
    samples: m,
    rounds,
  };
}
