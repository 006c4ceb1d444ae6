/**
 * What a training run computes, beyond the model and the data: the frozen
 * part of the configuration that both the step driver and every shard
 * computer must agree on.
 */
import { AggregationRules, fewestValues, type Aggregation } from './aggregate.ts';
import type { Augment } from './augment.ts';
import { invalidArgument } from './errors.ts';
import type { LoraConfig } from './lora.ts';

export const Methods = ['advclip-lora', 'clip-lora'] as const;
export type Method = (typeof Methods)[number];
export const Perturbations = ['universal', 'per-sample'] as const;
export type Perturbation = (typeof Perturbations)[number];
export const DeltaSteps = ['grad', 'sign'] as const;
export type DeltaStep = (typeof DeltaSteps)[number];
/** How η_δ of raw-gradient steps is set: calibrated once per run from its first mean δ-gradient (ours), or as given (the paper's η_δ). */
export const DeltaCalibrations = ['first-gradient', 'none'] as const;
export type DeltaCalibration = (typeof DeltaCalibrations)[number];
export const LoraUpdates = ['jacobi', 'gauss-seidel'] as const;
export type LoraUpdate = (typeof LoraUpdates)[number];
export const Optimizers = ['adamw', 'sgd'] as const;
export type OptimizerName = (typeof Optimizers)[number];
export const Schedules = ['cosine', 'constant'] as const;
export type Schedule = (typeof Schedules)[number];
export const SyncModes = ['exact', 'local-delta'] as const;
export type SyncMode = (typeof SyncModes)[number];

export interface TrainSpec {
  readonly method: Method;
  readonly seed: number;
  readonly lora: LoraConfig;
  /** ℓ∞ radius of δ in [0,1] pixel units */
  readonly epsilon: number;
  /** τ: ascent steps on δ per step (0 for clip-lora) */
  readonly tau: number;
  readonly perturbation: Perturbation;
  readonly deltaStep: DeltaStep;
  /**
   * the δ step: η_δ itself, except with deltaCalibration 'first-gradient',
   * where it is the per-pixel RMS length of the run's first ascent step (see
   * calibratedLrDelta)
   */
  readonly lrDelta: number;
  /** 'none' for sign steps, whose length needs no calibration */
  readonly deltaCalibration: DeltaCalibration;
  readonly loraUpdate: LoraUpdate;
  readonly optimizer: OptimizerName;
  readonly lr: number;
  readonly schedule: Schedule;
  readonly weightDecay: number;
  readonly iters: number;
  readonly batchSize: number;
  /** samples per chunk: the unit of work and of deterministic reduction */
  readonly chunkSize: number;
  readonly augment: Augment;
  readonly sync: SyncMode;
  /** how the step driver combines the workers' results (robust rules: local-delta only); the workers never see it */
  readonly aggregation: Aggregation;
  /** exact mode: the fraction of each round's chunks recomputed on a second worker and compared bit for bit (coordinator-side) */
  readonly verifyFraction: number;
  /** also compute the loss at δ = 0 each step (one extra forward pass) */
  readonly cleanLoss: boolean;
  /** reset δ to 0 at each epoch (the authors' code); Algorithm 1 carries it */
  readonly resetDeltaEachEpoch: boolean;
}

export function validateTrainSpec(s: TrainSpec): TrainSpec {
  const check = (ok: boolean, message: string) => {
    if (!ok) throw invalidArgument(message);
  };
  check(Methods.includes(s.method), `--method must be one of ${Methods.join('|')}, got "${s.method}"`);
  check(Number.isInteger(s.seed), `--seed must be an integer, got ${s.seed}`);
  check(s.epsilon >= 0 && s.epsilon <= 1, `--epsilon must be in [0, 1], got ${s.epsilon}`);
  check(Number.isInteger(s.tau) && s.tau >= 0, `--tau must be a non-negative integer, got ${s.tau}`);
  check(s.lrDelta >= 0, `--lr-delta must be ≥ 0, got ${s.lrDelta}`);
  check(s.lr > 0, `--lr must be > 0, got ${s.lr}`);
  check(s.weightDecay >= 0, `weight decay must be ≥ 0, got ${s.weightDecay}`);
  check(Number.isInteger(s.iters) && s.iters >= 0, `--iters must be a non-negative integer, got ${s.iters}`);
  check(Number.isInteger(s.batchSize) && s.batchSize >= 1, `--batch-size must be a positive integer, got ${s.batchSize}`);
  check(Number.isInteger(s.chunkSize) && s.chunkSize >= 1, `--chunk-size must be a positive integer, got ${s.chunkSize}`);
  check(Perturbations.includes(s.perturbation), `--perturbation must be one of ${Perturbations.join('|')}`);
  check(DeltaSteps.includes(s.deltaStep), `--delta-step must be one of ${DeltaSteps.join('|')}`);
  check(DeltaCalibrations.includes(s.deltaCalibration), `--delta-calibration must be one of ${DeltaCalibrations.join('|')}`);
  const calibrated = s.deltaStep === 'grad' && s.deltaCalibration === 'first-gradient';
  check(
    !calibrated || s.perturbation === 'universal',
    '--delta-calibration first-gradient calibrates the universal δ; with --perturbation per-sample pass --delta-calibration none (η_δ = --lr-delta) or --delta-step sign',
  );
  check(
    !calibrated || s.sync === 'exact',
    '--delta-calibration first-gradient needs --sync exact (in local-delta mode no process sees the run\'s first mean δ-gradient): ' +
      'pass --delta-calibration none with an --lr-delta for the raw gradient, or --delta-step sign',
  );
  check(LoraUpdates.includes(s.loraUpdate), `--lora-update must be one of ${LoraUpdates.join('|')}`);
  check(Optimizers.includes(s.optimizer), `--optimizer must be one of ${Optimizers.join('|')}`);
  check(Schedules.includes(s.schedule), `--schedule must be one of ${Schedules.join('|')}`);
  check(SyncModes.includes(s.sync), `--sync must be one of ${SyncModes.join('|')}`);
  check(AggregationRules.includes(s.aggregation.rule), `--aggregate must be one of ${AggregationRules.join('|')}`);
  check(Number.isInteger(s.aggregation.trim) && s.aggregation.trim >= 1, `--trim must be a positive integer, got ${s.aggregation.trim}`);
  check(
    s.aggregation.rule === 'mean' || s.sync === 'local-delta',
    `--aggregate ${s.aggregation.rule} needs --sync local-delta: in exact mode every chunk is summed once, and one worker's chunk has nothing to be compared with`,
  );
  check(s.verifyFraction >= 0 && s.verifyFraction <= 1, `--verify-fraction must be in [0, 1], got ${s.verifyFraction}`);
  check(s.verifyFraction === 0 || s.sync === 'exact', '--verify-fraction needs --sync exact: a local-delta result depends on its whole shard, so no chunk of it can be recomputed alone');
  check(fewestValues(s.aggregation) <= Math.ceil(s.batchSize / s.chunkSize), `--aggregate trimmed-mean --trim ${s.aggregation.trim} needs ${fewestValues(s.aggregation)} workers' results, but a minibatch has only ${Math.ceil(s.batchSize / s.chunkSize)} chunks (--batch-size / --chunk-size)`);
  return Object.freeze({ ...s, tau: s.method === 'clip-lora' ? 0 : s.tau, deltaCalibration: s.deltaStep === 'sign' ? 'none' : s.deltaCalibration });
}

/** η_δ is calibrated from the run's first mean δ-gradient. */
export const calibratesLrDelta = (s: TrainSpec): boolean => s.deltaStep === 'grad' && s.deltaCalibration === 'first-gradient' && ascentSteps(s) > 0 && s.perturbation === 'universal';

/**
 * η_δ of a calibrated run: lrDelta·√d / ‖ḡ₀‖₂, with ḡ₀ the mean δ-gradient
 * of the run's first ascent round (step 0, δ = 0, the initial adapters) and
 * d its length. So the first raw-gradient step has the ℓ2 length of a signed
 * step of lrDelta (each pixel moves lrDelta in RMS), whatever the scale of
 * the model's gradients; later steps use the same η_δ on the raw gradient,
 * as Algorithm 1 does. A function of the run's settings, model and data
 * only: one process and N workers compute the same ḡ₀ bit for bit.
 */
export function calibratedLrDelta(s: TrainSpec, gradSum: Float32Array, count: number): number {
  let sq = 0;
  for (let j = 0; j < gradSum.length; j++) sq += (gradSum[j] / count) ** 2;
  const norm = Math.sqrt(sq);
  if (!(norm > 0) || !Number.isFinite(norm)) {
    throw invalidArgument(`cannot calibrate η_δ: the first mean δ-gradient has norm ${norm}; pass --delta-calibration none with an --lr-delta, or --delta-step sign`);
  }
  return (s.lrDelta * Math.sqrt(gradSum.length)) / norm;
}

/** τ in effect: clip-lora is the same loop with no ascent. */
export const ascentSteps = (s: TrainSpec): number => (s.method === 'clip-lora' || s.epsilon === 0 ? 0 : s.tau);
