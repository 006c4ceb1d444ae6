/**
 * The training flags, shared by `advclip train`, `coordinator` and `cluster`,
 * and their mapping onto the frozen TrainSpec. Defaults are ALGORITHM.md's
 * (CLIP-LoRA practice): r 2, α 1, dropout 0.25, AdamW 2e-4 with cosine to
 * 1e-6, batch 32, 500 × shots iterations, τ 2, ε 1/255, signed δ steps of ε/2.
 */
import { invalidArgument } from '../core/errors.ts';
import { LoraTargets, defaultLoraConfig, validateLoraConfig, type LoraTarget, type Tower } from '../core/lora.ts';
import { DeltaSteps, LoraUpdates, Methods, Optimizers, Perturbations, Schedules, SyncModes, validateTrainSpec, type TrainSpec } from '../core/train-spec.ts';
import type { FlagTable, FlagValues } from './args.ts';
import { backendFlag } from './runtime.ts';

export const dataFlags: FlagTable = {
  model: { type: 'string', arg: 'DIR', required: true, help: 'HF CLIPModel directory' },
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
  'lr-delta': { type: 'fraction', arg: 'η', help: 'δ step size η_δ (default ε/2)' },
  'delta-step': { type: 'string', default: 'sign', choices: DeltaSteps, help: 'δ ascent: raw gradient or its sign' },
  perturbation: { type: 'string', default: 'universal', choices: Perturbations, help: 'one δ carried across minibatches, or Madry per-sample PGD (random start, τ steps of --lr-delta by --delta-step; the PGD of advclip eval)' },
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
  augment: { type: 'string', default: 'crop-flip', choices: ['crop-flip', 'none'], help: 'RandomResizedCrop + flip, or none' },
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
  return validateTrainSpec({
    method: flags.method as TrainSpec['method'],
    seed: flags.seed as number,
    lora,
    epsilon,
    tau: flags.tau as number,
    perturbation: flags.perturbation as TrainSpec['perturbation'],
    deltaStep: flags['delta-step'] as TrainSpec['deltaStep'],
    lrDelta: (flags['lr-delta'] as number | undefined) ?? epsilon / 2,
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
