/**
 * The training flags, shared by `advclip train`, `coordinator` and `cluster`,
 * and their mapping onto the frozen TrainSpec. Defaults are ALGORITHM.md's
 * (CLIP-LoRA practice): r 2, α 1, dropout 0.25, AdamW 2e-4 with cosine to
 * 1e-6, batch 32, 500 × shots iterations, τ 2, ε 1/255; the δ ascent is the
 * paper's (Algorithm 1: the universal δ carried across steps, raw mean
 * gradient) with our calibrated η_δ, and Madry's signed ε/4 steps for
 * per-sample δ.
 */
import { invalidArgument } from '../core/errors.ts';
import { LoraTargets, defaultLoraConfig, validateLoraConfig, type LoraTarget, type Tower } from '../core/lora.ts';
import { DeltaCalibrations, DeltaSteps, LoraUpdates, Methods, Optimizers, Perturbations, Schedules, SyncModes, validateTrainSpec, type TrainSpec } from '../core/train-spec.ts';
import type { FlagTable, FlagValues } from './args.ts';
import { backendFlag } from './runtime.ts';

export const dataFlags: FlagTable = {
  model: { type: 'string', arg: 'DIR', required: true, help: 'HF CLIPModel directory or a Hub repo id owner/name[@revision], fetched into the HF cache (HF_HOME; HF_TOKEN, HF_ENDPOINT, HF_HUB_OFFLINE=1)' },
  data: { type: 'string', arg: 'DIR', required: true, help: 'data set: ImageFolder (train/, test/) or CoOp layout' },
  'split-file': { type: 'string', arg: 'FILE', help: 'CoOp split_zhou_<Name>.json' },
  'dataset-name': { type: 'string', arg: 'NAME', help: 'CoOp data set name for its class-name rules (default: from the folder)' },
  template: { type: 'string', default: 'a photo of a {}.', arg: 'TEXT', help: 'class prompt template' },
  backend: backendFlag,
};

export const trainFlags: FlagTable = {
  ...dataFlags,
  shots: { type: 'int', default: 16, help: 'training images per class (K-shot)' },
  seed: { type: 'int', default: 1, help: 'seed of every random draw' },
  method: { type: 'string', default: 'advclip-lora', choices: Methods, help: 'advclip-lora (Algorithm 1) or clip-lora (τ = 0)' },
  iters: { type: 'int', arg: 'N', help: 'optimiser steps (default 500 × shots; 0 writes the initial adapter)' },
  epsilon: { type: 'fraction', default: '1/255', help: 'ℓ∞ radius of δ in [0,1] pixels (1/255 or a decimal)' },
  tau: { type: 'int', default: 2, help: 'ascent steps on δ per step' },
  'delta-step': {
    type: 'string',
    choices: DeltaSteps,
    help: 'δ ascent: grad, the raw mean gradient (the paper, Algorithm 1; default for universal δ), or its sign (FGSM/PGD-style; default for per-sample δ)',
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
  perturbation: { type: 'string', default: 'universal', choices: Perturbations, help: 'universal: one δ carried across minibatches (the paper); per-sample: Madry PGD, a fresh δ per image (ours)' },
  'reset-delta': { type: 'boolean', help: 'reset the universal δ each epoch (the authors’ code; Algorithm 1 carries it)' },
  'lora-update': { type: 'string', default: 'jacobi', choices: LoraUpdates, help: 'update A and B together, or A then B at the new A' },
  optimizer: { type: 'string', default: 'adamw', choices: Optimizers, help: 'AdamW (β 0.9/0.999, ε 1e-8) or plain SGD' },
  lr: { type: 'number', default: 2e-4, help: 'LoRA learning rate η_w' },
  'weight-decay': { type: 'number', default: 1e-2, help: 'AdamW decoupled weight decay' },
  schedule: { type: 'string', default: 'cosine', choices: Schedules, help: 'cosine from lr to 1e-6 at the last step, or constant' },
  'batch-size': { type: 'int', default: 32, help: 'minibatch size M' },
  'chunk-size': { type: 'int', default: 8, help: 'samples per chunk (unit of work and of deterministic reduction)' },
  'lora-rank': { type: 'int', default: 2, help: 'LoRA rank r' },
  'lora-alpha': { type: 'number', default: 1, help: 'LoRA α' },
  rslora: { type: 'boolean', help: 'scale by α/√r instead of α/r' },
  'lora-dropout': { type: 'number', default: 0.25, help: 'dropout on the LoRA input' },
  'lora-targets': { type: 'string', default: 'q_proj,k_proj,v_proj', arg: 'LIST', help: `adapted linears (${LoraTargets.join(',')})` },
  'lora-towers': { type: 'string', default: 'vision,text', arg: 'LIST', help: 'adapted towers' },
  'lora-layers': { type: 'string', arg: 'LIST', help: 'adapted layer indices, e.g. 0,1,2 (default all)' },
  'lora-init': { type: 'string', default: 'kaiming-uniform', choices: ['kaiming-uniform', 'gaussian'], help: 'initialisation of A' },
  augment: { type: 'string', default: 'crop-flip', choices: ['crop-flip', 'none'], help: 'crop-flip: CLIP-LoRA’s RandomResizedCrop (scale 0.08–1, ratio 3/4–4/3, bicubic) of the decoded original + flip; none: the evaluation centre crop' },
  'no-clean-loss': { type: 'boolean', help: 'skip the extra forward pass that logs the clean loss' },
  out: { type: 'string', arg: 'ADAPTER_DIR', required: true, help: 'where the PEFT adapter and train.json go' },
  json: { type: 'boolean', help: 'final JSON object on stdout; a JSON line per step on stderr' },
};

const list = (text: string) => text.split(',').map((s) => s.trim()).filter(Boolean);

export function trainSpecFrom(flags: FlagValues, sync: TrainSpec['sync'] = 'exact'): TrainSpec {
  const shots = flags.shots as number;
  if (shots < 1) throw invalidArgument(`--shots must be ≥ 1, got ${shots}`);
  const epsilon = flags.epsilon as number;
  if (epsilon < 0) throw invalidArgument(`--epsilon must be ≥ 0, got ${epsilon}`);
  const targets = list(flags['lora-targets'] as string);
  for (const t of targets) if (!LoraTargets.includes(t as LoraTarget)) throw invalidArgument(`--lora-targets: unknown module "${t}" (expected ${LoraTargets.join(',')})`);
  const towers = list(flags['lora-towers'] as string);
  for (const t of towers) if (t !== 'vision' && t !== 'text') throw invalidArgument(`--lora-towers: unknown tower "${t}" (expected vision,text)`);
  const layers = flags['lora-layers'] ? list(flags['lora-layers'] as string).map(Number) : null;
  if (layers?.some((l) => !Number.isInteger(l))) throw invalidArgument(`--lora-layers must be integers, got "${flags['lora-layers']}"`);
  const lora = validateLoraConfig({
    ...defaultLoraConfig,
    rank: flags['lora-rank'] as number,
    alpha: flags['lora-alpha'] as number,
    rslora: flags.rslora === true,
    dropout: flags['lora-dropout'] as number,
    targets: targets as LoraTarget[],
    towers: towers as Tower[],
    layers,
    init: flags['lora-init'] as 'kaiming-uniform' | 'gaussian',
  });
  // δ defaults by mode: the paper's raw-gradient ascent for the universal δ, Madry's signed steps of ε/4 per sample
  const universal = flags.perturbation === 'universal';
  const deltaStep = (flags['delta-step'] as TrainSpec['deltaStep'] | undefined) ?? (universal ? 'grad' : 'sign');
  return validateTrainSpec({
    method: flags.method as TrainSpec['method'],
    seed: flags.seed as number,
    lora,
    epsilon,
    tau: flags.tau as number,
    perturbation: flags.perturbation as TrainSpec['perturbation'],
    deltaStep,
    lrDelta: (flags['lr-delta'] as number | undefined) ?? (universal ? epsilon / 2 : epsilon / 4),
    deltaCalibration: (flags['delta-calibration'] as TrainSpec['deltaCalibration'] | undefined) ?? (universal && deltaStep === 'grad' ? 'first-gradient' : 'none'),
    loraUpdate: flags['lora-update'] as TrainSpec['loraUpdate'],
    optimizer: flags.optimizer as TrainSpec['optimizer'],
    lr: flags.lr as number,
    schedule: flags.schedule as TrainSpec['schedule'],
    weightDecay: flags['weight-decay'] as number,
    iters: (flags.iters as number | undefined) ?? 500 * shots,
    batchSize: flags['batch-size'] as number,
    chunkSize: flags['chunk-size'] as number,
    augment: flags.augment as TrainSpec['augment'],
    sync,
    cleanLoss: flags['no-clean-loss'] !== true,
    resetDeltaEachEpoch: flags['reset-delta'] === true,
  });
}

export { SyncModes };
