/**
 * The RunSpec: everything a training run is — which model, which data,
 * which prompts, how many shots, and the frozen TrainSpec (LoRA,
 * perturbation, optimiser, sync mode). One zod schema validates it and
 * holds every default; CLI flags, a YAML --config and the wire (run.proto's
 * RunSpec, spec-wire.ts) all go through `parseRunSpec`. Paths, outputs,
 * transport and the backend are not part of it: they belong to a process.
 */
import { z } from 'zod';
import type { Augment } from '../core/augment.ts';
import { invalidArgument } from '../core/errors.ts';
import { AggregationRules } from '../core/aggregate.ts';
import { Attacks, type AttackName } from '../core/evaluate.ts';
import { LoraTargets, Towers } from '../core/lora.ts';
import { DeltaCalibrations, DeltaSteps, LoraUpdates, Methods, Optimizers, Perturbations, Schedules, SyncModes, validateTrainSpec, type TrainSpec } from '../core/train-spec.ts';

const Augments = ['crop-flip', 'none'] as const satisfies readonly Augment[];

/** Bumped whenever the meaning of a RunSpec field changes; a worker refuses a spec of another version. */
export const RUN_SPEC_VERSION = 1;

const got = (iss: { input?: unknown }) => `, got ${typeof iss.input === 'string' ? JSON.stringify(iss.input) : String(iss.input)}`;
const positiveInt = () => z.int({ error: (iss) => `must be an integer${got(iss)}` }).min(1, { error: (iss) => `must be a positive integer${got(iss)}` });
const nonNegativeInt = () => z.int({ error: (iss) => `must be an integer${got(iss)}` }).min(0, { error: (iss) => `must be a non-negative integer${got(iss)}` });
const oneOf = <T extends readonly [string, ...string[]]>(values: T) => z.enum(values, { error: (iss) => `must be one of ${values.join('|')}${got(iss)}` });

const LoraSchema = z.strictObject({
  rank: positiveInt().default(2),
  alpha: z.number().positive({ error: (iss) => `must be > 0${got(iss)}` }).default(1),
  /** s = α/√r (rsLoRA) instead of α/r */
  rslora: z.boolean().default(false),
  dropout: z
    .number()
    .min(0, { error: (iss) => `must be in [0, 1)${got(iss)}` })
    .lt(1, { error: (iss) => `must be in [0, 1)${got(iss)}` })
    .default(0.25),
  targets: z.array(oneOf(LoraTargets)).min(1, { error: 'needs at least one target module' }).default(['q_proj', 'k_proj', 'v_proj']),
  towers: z.array(oneOf(Towers)).min(1, { error: 'needs at least one tower' }).default(['vision', 'text']),
  /** layer indices to adapt; null: every layer */
  layers: z.array(nonNegativeInt()).nullable().default(null),
  init: oneOf(['kaiming-uniform', 'gaussian'] as const).default('kaiming-uniform'),
});

const TrainSchema = z.strictObject({
  method: oneOf(Methods).default('advclip-lora'),
  seed: z.int({ error: (iss) => `must be an integer${got(iss)}` }).default(1),
  lora: LoraSchema.prefault({}),
  /** ℓ∞ radius of δ in [0,1] pixels */
  epsilon: z
    .number()
    .min(0, { error: (iss) => `must be ≥ 0${got(iss)}` })
    .max(1, { error: (iss) => `must be in [0, 1]${got(iss)}` })
    .default(1 / 255),
  tau: nonNegativeInt().default(2),
  perturbation: oneOf(Perturbations).default('universal'),
  /** default by mode (deltaDefaults): grad for the universal δ in exact mode, sign otherwise */
  deltaStep: oneOf(DeltaSteps).optional(),
  /** η_δ, or the RMS length of the first step when calibrated; default by mode (deltaDefaults) */
  lrDelta: z.number().min(0, { error: (iss) => `must be ≥ 0${got(iss)}` }).optional(),
  /** default by mode (deltaDefaults): first-gradient where the step is grad on the universal δ in exact mode */
  deltaCalibration: oneOf(DeltaCalibrations).optional(),
  loraUpdate: oneOf(LoraUpdates).default('jacobi'),
  optimizer: oneOf(Optimizers).default('adamw'),
  lr: z.number().positive({ error: (iss) => `must be > 0${got(iss)}` }).default(2e-4),
  schedule: oneOf(Schedules).default('cosine'),
  weightDecay: z.number().min(0, { error: (iss) => `must be ≥ 0${got(iss)}` }).default(1e-2),
  /** optimiser steps; default 500 × shots */
  iters: nonNegativeInt().optional(),
  batchSize: positiveInt().default(32),
  chunkSize: positiveInt().default(8),
  augment: oneOf(Augments).default('crop-flip'),
  sync: oneOf(SyncModes).default('exact'),
  /** coordinator-side: how the workers' results combine (not sent to workers) */
  aggregation: z
    .strictObject({
      rule: oneOf(AggregationRules).default('mean'),
      /** trimmed-mean: values dropped at each end of every coordinate */
      trim: positiveInt().default(1),
    })
    .prefault({}),
  /** coordinator-side: exact mode's share of chunks computed twice and compared */
  verifyFraction: z
    .number()
    .min(0, { error: (iss) => `must be in [0, 1]${got(iss)}` })
    .max(1, { error: (iss) => `must be in [0, 1]${got(iss)}` })
    .default(0),
  cleanLoss: z.boolean().default(true),
  resetDeltaEachEpoch: z.boolean().default(false),
});

const DataSchema = z.strictObject({
  /** ImageFolder (train/, test/) or CoOp layout */
  root: z.string().min(1, { error: 'is required' }),
  /** CoOp split_zhou_<Name>.json */
  splitFile: z.string().min(1).nullable().default(null),
  /** CoOp data set name for its class-name rules; null: from the folder */
  datasetName: z.string().min(1).nullable().default(null),
});

/**
 * Evaluation during training: every `every` steps (and after the last), the
 * accuracy under `attack` on a class-balanced, seeded subset of `limit` test
 * images, computed at the current adapters in EVAL rounds sharded like image
 * chunks. Off (every = 0) by default. ε defaults to the run's ε_train (0
 * under attack none).
 */
const EvaluationSchema = z.strictObject({
  /** steps between evaluations; 0: none */
  every: nonNegativeInt().default(0),
  attack: oneOf(Attacks).default('pgd'),
  /** test images evaluated, class-balanced (fewer when the test split has fewer) */
  limit: positiveInt().default(256),
  /** ℓ∞ radius of the attack in [0,1] pixels; default the run's ε */
  epsilon: z
    .number()
    .min(0, { error: (iss) => `must be ≥ 0${got(iss)}` })
    .max(1, { error: (iss) => `must be in [0, 1]${got(iss)}` })
    .optional(),
  /** PGD steps (step ε/4, random start) */
  steps: positiveInt().default(10),
});

export const RunSpecSchema = z
  .strictObject({
    /** HF CLIPModel directory */
    model: z.string().min(1, { error: 'is required' }),
    data: DataSchema,
    /** class prompt template; {} is the class name */
    template: z
      .string()
      .refine((t) => t.includes('{}'), { error: (iss) => `has no {} for the class name${got(iss)}` })
      .default('a photo of a {}.'),
    /** training images per class (K-shot) */
    shots: z
      .int({ error: (iss) => `must be an integer${got(iss)}` })
      .min(1, { error: (iss) => `must be ≥ 1${got(iss)}` })
      .default(16),
    train: TrainSchema.prefault({}),
    evaluation: EvaluationSchema.prefault({}),
  })
  .transform((s) => ({
    ...s,
    train: { ...s.train, ...deltaDefaults(s.train), iters: s.train.iters ?? 500 * s.shots },
    // a clean evaluation has no radius: 0, so train.json never reports one it did not use
    evaluation: { ...s.evaluation, epsilon: s.evaluation.attack === 'none' ? 0 : (s.evaluation.epsilon ?? s.train.epsilon) },
  }));

/**
 * The δ ascent's defaults follow the mode. The universal δ in exact mode
 * ascends as Algorithm 1 does, with the raw mean gradient, at an η_δ
 * calibrated from the run's first mean δ-gradient (ours: it makes the step
 * independent of the model's gradient scale). Per-sample δ takes Madry's
 * signed steps of ε/4; local-delta takes signed steps of ε/2, since no
 * process sees the run's mean first gradient there.
 */
function deltaDefaults(t: { perturbation: TrainSpec['perturbation']; sync: TrainSpec['sync']; epsilon: number; deltaStep?: TrainSpec['deltaStep']; lrDelta?: number; deltaCalibration?: TrainSpec['deltaCalibration'] }) {
  const universal = t.perturbation === 'universal';
  const deltaStep = t.deltaStep ?? (universal && t.sync === 'exact' ? 'grad' : 'sign');
  return {
    deltaStep,
    lrDelta: t.lrDelta ?? (universal ? t.epsilon / 2 : t.epsilon / 4),
    deltaCalibration: t.deltaCalibration ?? (universal && t.sync === 'exact' && deltaStep === 'grad' ? 'first-gradient' : 'none'),
  } as const;
}

export interface DataSpec {
  readonly root: string;
  readonly splitFile: string | null;
  readonly datasetName: string | null;
}

/** Evaluation during training (EvaluationSchema); `every` 0: none. */
export interface EvaluationSpec {
  readonly every: number;
  readonly attack: AttackName;
  readonly limit: number;
  readonly epsilon: number;
  readonly steps: number;
}

export interface RunSpec {
  readonly model: string;
  readonly data: DataSpec;
  readonly template: string;
  readonly shots: number;
  readonly train: TrainSpec;
  readonly evaluation: EvaluationSpec;
}

/** Is an evaluation due once `step` steps are done: every `every` steps, and after the last. */
export const evaluationDue = (e: EvaluationSpec, step: number, iters: number): boolean => e.every > 0 && step > 0 && (step % e.every === 0 || step === iters);

/** Names a field of the spec for an error message: a flag for the CLI, a proto field for the wire. */
export type FieldNamer = (path: readonly PropertyKey[]) => string;

const dottedPath: FieldNamer = (path) => path.map(String).join('.');

/** Validates once, fills every default, freezes. Errors say which field (as `name` spells it) and what was wrong. */
export function parseRunSpec(input: unknown, name: FieldNamer = dottedPath): RunSpec {
  const parsed = RunSpecSchema.safeParse(input, { reportInput: true });
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const message =
      issue.code === 'unrecognized_keys'
        ? `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${name([...issue.path, k])}"`).join(', ')}`
        : `${name(issue.path)} ${issue.code === 'invalid_type' && issue.input === undefined ? 'is required' : issue.message}`;
    throw invalidArgument(message);
  }
  const s = parsed.data;
  return deepFreeze({ ...s, train: validateTrainSpec(s.train) });
}

/** Every default of a run, as parseRunSpec fills them (iters follows shots; the δ ascent's follow the mode and ε). */
export const RUN_DEFAULTS: RunSpec = parseRunSpec({ model: '-', data: { root: '-' } });

/** The class prompt of one class (the schema has checked that the template has a {}). */
export const promptFor = (template: string, className: string): string => template.replaceAll('{}', className);

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    if (!Object.isFrozen(value)) Object.freeze(value);
  }
  return value;
}
