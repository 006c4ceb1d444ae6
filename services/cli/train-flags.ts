/**
 * The training flags, shared by `advclip train`, `coordinator` and `cluster`,
 * and the one mapping of their values onto a RunSpec. The defaults shown in
 * --help are the RunSpec schema's (run/spec.ts), never restated here. The δ ascent
 * defaults by mode: the paper's raw mean gradient (Algorithm 1) with our
 * calibrated η_δ for the universal δ, Madry's signed ε/4 steps per sample.
 */
import { LoraTargets } from '../core/lora.ts';
import { DeltaCalibrations, DeltaSteps, LoraUpdates, Methods, Optimizers, Perturbations, Schedules } from '../core/train-spec.ts';
import { DEFAULT_KEEP_CHECKPOINTS } from '../io/checkpoint.ts';
import type { CheckpointOptions } from '../run/checkpointing.ts';
import { BackendNames } from '../core/backend.ts';
import { Attacks } from '../core/evaluate.ts';
import type { DataSource } from '../run/prepare.ts';
import { parseRunSpec, RUN_DEFAULTS, type RunSpec } from '../run/spec.ts';
import { invalidArgument } from '../core/errors.ts';
import { type FlagSpec, type FlagTable, type FlagValues } from './args.ts';

const D = RUN_DEFAULTS;
const T = D.train;
const E = D.evaluation;

export const backendFlag: FlagSpec = {
  type: 'string',
  arg: BackendNames.join('|'),
  help: "compute backend (env ADVCLIP_BACKEND; auto tries node-gpu, node, native, wasm, cpu; ADVCLIP_NATIVE_THREADS sets native's threads)",
};

export const dataFlags: FlagTable = {
  model: { type: 'string', arg: 'DIR', required: true, help: 'HF CLIPModel directory or a Hub repo id owner/name[@revision], fetched into the HF cache (HF_HOME; HF_TOKEN, HF_ENDPOINT, HF_HUB_OFFLINE=1)' },
  data: { type: 'string', arg: 'DIR', required: true, help: 'data set: ImageFolder (train/, test/) or CoOp layout' },
  'split-file': { type: 'string', arg: 'FILE', help: 'CoOp split_zhou_<Name>.json' },
  'dataset-name': { type: 'string', arg: 'NAME', help: 'CoOp data set name for its class-name rules (default: from the folder)' },
  template: { type: 'string', default: D.template, arg: 'TEXT', help: 'class prompt template' },
  backend: backendFlag,
};

export const trainFlags: FlagTable = {
  ...dataFlags,
  shots: { type: 'int', default: D.shots, help: 'training images per class (K-shot)' },
  seed: { type: 'int', default: T.seed, help: 'seed of every random draw' },
  method: { type: 'string', default: T.method, choices: Methods, help: 'advclip-lora (Algorithm 1) or clip-lora (τ = 0)' },
  iters: { type: 'int', arg: 'N', help: 'optimiser steps (default 500 × shots; 0 writes the initial adapter)' },
  epsilon: { type: 'fraction', default: T.epsilon, help: 'ℓ∞ radius of δ in [0,1] pixels (1/255 or a decimal)' },
  tau: { type: 'int', default: T.tau, help: 'ascent steps on δ per step' },
  'delta-step': {
    type: 'string',
    choices: DeltaSteps,
    help: 'δ ascent: grad, the raw mean gradient (the paper, Algorithm 1; default for universal δ with --sync exact), or its sign (FGSM/PGD-style; default for per-sample δ and for --sync local-delta)',
  },
  'lr-delta': {
    type: 'fraction',
    arg: 'η',
    help: 'δ step: with grad and first-gradient calibration, the per-pixel RMS length of the first step (default ε/2); else η_δ itself (default ε/2 universal, ε/4 per-sample)',
  },
  'delta-calibration': {
    type: 'string',
    choices: DeltaCalibrations,
    help: 'grad steps: first-gradient (ours; default for universal δ with --sync exact) fixes η_δ = lr-delta·√d/‖ḡ₀‖₂ from the run’s first mean δ-gradient ḡ₀, so the raw gradient moves δ whatever its scale; none: η_δ = --lr-delta times the raw gradient',
  },
  perturbation: { type: 'string', default: T.perturbation, choices: Perturbations, help: 'universal: one δ carried across minibatches (the paper); per-sample: Madry PGD, a fresh δ per image (ours: random start, τ steps of --lr-delta by --delta-step; the PGD of advclip eval)' },
  'reset-delta': { type: 'boolean', help: 'reset the universal δ each epoch (the authors’ code; Algorithm 1 carries it)' },
  'lora-update': { type: 'string', default: T.loraUpdate, choices: LoraUpdates, help: 'update A and B together, or A then B at the new A' },
  optimizer: { type: 'string', default: T.optimizer, choices: Optimizers, help: 'AdamW (β 0.9/0.999, ε 1e-8) or plain SGD' },
  lr: { type: 'number', default: T.lr, help: 'LoRA learning rate η_w' },
  'weight-decay': { type: 'number', default: T.weightDecay, help: 'AdamW decoupled weight decay' },
  schedule: { type: 'string', default: T.schedule, choices: Schedules, help: 'cosine from lr to 1e-6 at the last step, or constant' },
  'batch-size': { type: 'int', default: T.batchSize, help: 'minibatch size M' },
  'chunk-size': { type: 'int', default: T.chunkSize, help: 'samples per chunk (unit of work and of deterministic reduction)' },
  'lora-rank': { type: 'int', default: T.lora.rank, help: 'LoRA rank r' },
  'lora-alpha': { type: 'number', default: T.lora.alpha, help: 'LoRA α' },
  rslora: { type: 'boolean', help: 'scale by α/√r instead of α/r' },
  'lora-dropout': { type: 'number', default: T.lora.dropout, help: 'dropout on the LoRA input' },
  'lora-targets': { type: 'string', default: T.lora.targets.join(','), arg: 'LIST', help: `adapted linears (${LoraTargets.join(',')})` },
  'lora-towers': { type: 'string', default: T.lora.towers.join(','), arg: 'LIST', help: 'adapted towers' },
  'lora-layers': { type: 'string', arg: 'LIST', help: 'adapted layer indices, e.g. 0,1,2 (default all)' },
  'lora-init': { type: 'string', default: T.lora.init, choices: ['kaiming-uniform', 'gaussian'], help: 'initialisation of A' },
  augment: { type: 'string', default: T.augment, choices: ['crop-flip', 'none'], help: 'crop-flip: CLIP-LoRA’s RandomResizedCrop (scale 0.08–1, ratio 3/4–4/3, bicubic) of the decoded original + flip; none: the evaluation centre crop' },
  'no-clean-loss': { type: 'boolean', help: 'skip the extra forward pass that logs the clean loss' },
  'eval-every': { type: 'int', default: E.every, arg: 'N', help: 'evaluate every N steps and after the last, on the workers of a cluster (0: never); accuracies go to train.json, the step JSON lines and advclip_accuracy{attack}' },
  'eval-attack': { type: 'string', default: E.attack, choices: Attacks, help: 'attack of those evaluations (PGD: random start, step ε/4)' },
  'eval-limit': { type: 'int', default: E.limit, arg: 'M', help: 'test images per evaluation: a class-balanced subset drawn with --seed' },
  'eval-epsilon': { type: 'fraction', arg: 'ε', help: 'ℓ∞ radius of the evaluation attack (default: --epsilon, the training ε; 0 under none)' },
  'eval-steps': { type: 'int', default: E.steps, help: 'PGD steps of the evaluation attack' },
  out: { type: 'string', arg: 'ADAPTER_DIR', required: true, help: 'where the PEFT adapter and train.json go' },
  json: { type: 'boolean', help: 'final JSON object on stdout; a JSON line per step on stderr' },
};

export const checkpointFlags: FlagTable = {
  'checkpoint-dir': { type: 'string', arg: 'DIR', help: 'write checkpoints here and resume from the newest valid one (a checkpoint of other training flags, model or data is refused)' },
  'checkpoint-every': { type: 'int', default: 50, arg: 'N', help: 'steps between checkpoints (one more when the run ends or drains)' },
  'checkpoint-keep': { type: 'int', default: DEFAULT_KEEP_CHECKPOINTS, arg: 'K', help: 'newest checkpoints kept' },
};

/** The flag that sets each RunSpec field, for error messages. */
const FLAG_OF: Readonly<Record<string, string>> = {
  model: 'model',
  'data.root': 'data',
  'data.splitFile': 'split-file',
  'data.datasetName': 'dataset-name',
  'train.lora.rank': 'lora-rank',
  'train.lora.alpha': 'lora-alpha',
  'train.lora.dropout': 'lora-dropout',
  'train.lora.targets': 'lora-targets',
  'train.lora.towers': 'lora-towers',
  'train.lora.layers': 'lora-layers',
  'train.lora.init': 'lora-init',
  'train.lrDelta': 'lr-delta',
  'train.deltaStep': 'delta-step',
  'train.deltaCalibration': 'delta-calibration',
  'train.loraUpdate': 'lora-update',
  'train.weightDecay': 'weight-decay',
  'train.batchSize': 'batch-size',
  'train.chunkSize': 'chunk-size',
  'train.aggregation.rule': 'aggregate',
  'train.aggregation.trim': 'trim',
  'train.verifyFraction': 'verify-fraction',
  'evaluation.every': 'eval-every',
  'evaluation.attack': 'eval-attack',
  'evaluation.limit': 'eval-limit',
  'evaluation.epsilon': 'eval-epsilon',
  'evaluation.steps': 'eval-steps',
};

/** A RunSpec field as its flag: train.lora.rank → --lora-rank; an element of a list names the list's flag. */
const flagOf = (path: readonly PropertyKey[]): string => {
  const fields = path.filter((p) => typeof p === 'string') as string[];
  return `--${FLAG_OF[fields.join('.')] ?? fields.at(-1)}`;
};

const list = (text: unknown) => (typeof text === 'string' ? text.split(',').map((s) => s.trim()).filter(Boolean) : undefined);

/** The run the training flags describe: the one call each training command makes. */
export function runSpecFrom(flags: FlagValues, sync?: string): RunSpec {
  const layers = list(flags['lora-layers'])?.map(Number);
  return parseRunSpec(
    {
      model: flags.model,
      data: { root: flags.data, splitFile: flags['split-file'] ?? null, datasetName: flags['dataset-name'] ?? null },
      template: flags.template,
      shots: flags.shots,
      train: {
        method: flags.method,
        seed: flags.seed,
        lora: {
          rank: flags['lora-rank'],
          alpha: flags['lora-alpha'],
          rslora: flags.rslora === true,
          dropout: flags['lora-dropout'],
          targets: list(flags['lora-targets']),
          towers: list(flags['lora-towers']),
          layers: layers ?? null,
          init: flags['lora-init'],
        },
        epsilon: flags.epsilon,
        tau: flags.tau,
        perturbation: flags.perturbation,
        deltaStep: flags['delta-step'],
        lrDelta: flags['lr-delta'],
        deltaCalibration: flags['delta-calibration'],
        loraUpdate: flags['lora-update'],
        optimizer: flags.optimizer,
        lr: flags.lr,
        schedule: flags.schedule,
        weightDecay: flags['weight-decay'],
        iters: flags.iters,
        batchSize: flags['batch-size'],
        chunkSize: flags['chunk-size'],
        augment: flags.augment,
        sync: sync,
        aggregation: { rule: flags.aggregate, trim: flags.trim },
        verifyFraction: flags['verify-fraction'],
        cleanLoss: flags['no-clean-loss'] !== true,
        resetDeltaEachEpoch: flags['reset-delta'] === true,
      },
      evaluation: { every: flags['eval-every'], attack: flags['eval-attack'], limit: flags['eval-limit'], epsilon: flags['eval-epsilon'], steps: flags['eval-steps'] },
    },
    flagOf,
  );
}

/** The model, data and prompts the data flags name (advclip eval): validated as a RunSpec's. */
export function dataSourceFrom(flags: FlagValues): DataSource {
  const { model, data, template } = parseRunSpec({ model: flags.model, data: { root: flags.data, splitFile: flags['split-file'] ?? null, datasetName: flags['dataset-name'] ?? null }, template: flags.template }, flagOf);
  return { model, data, template };
}

/** --checkpoint-dir/-every/-keep; null without --checkpoint-dir. */
export function checkpointOptionsFrom(flags: FlagValues): CheckpointOptions | null {
  const dir = flags['checkpoint-dir'] as string | undefined;
  if (!dir) return null;
  const every = (flags['checkpoint-every'] as number | undefined) ?? 50;
  const keep = (flags['checkpoint-keep'] as number | undefined) ?? DEFAULT_KEEP_CHECKPOINTS;
  if (!Number.isInteger(every) || every < 1) throw invalidArgument(`--checkpoint-every must be ≥ 1, got ${every}`);
  if (!Number.isInteger(keep) || keep < 1) throw invalidArgument(`--checkpoint-keep must be ≥ 1, got ${keep}`);
  return { dir, every, keep };
}
