/**
 * `advclip eval`: clean or robust (FGSM / PGD, ℓ∞ in [0,1] pixels) accuracy
 * of CLIP, zero-shot or with a PEFT adapter, on a data set split.
 */
import * as tf from '@tensorflow/tfjs';
import type { ClipModel } from '../core/clip.ts';
import { invalidArgument } from '../core/errors.ts';
import { Attacks, classFeatures, evaluateBatch, type AttackSpec } from '../core/evaluate.ts';
import { AdapterTensors, type SampleSource } from '../core/shard.ts';
import type { LoraWeights } from '../core/lora.ts';
import type { LabeledImage } from '../io/dataset.ts';
import { loadAdapter } from '../io/peft.ts';
import type { CommandSpec, FlagValues } from './args.ts';
import type { Logger } from '../protocol/log.ts';
import { createProgress } from '../run/progress.ts';
import { inMemorySource, prepareData } from '../run/prepare.ts';
import { startBackend } from '../run/backend.ts';
import { dataFlags, dataSourceFrom } from './train-flags.ts';
import type { ClipModelDir } from '../io/model-dir.ts';

export const evalCommand: CommandSpec = {
  name: 'eval',
  summary: 'Clean or robust (FGSM/PGD) accuracy, zero-shot or with a LoRA adapter',
  usage: 'advclip eval --model DIR [--adapter ADAPTER_DIR] --data DIR [--split test] [--attack none|fgsm|pgd] [--epsilon 4/255] [--steps 10] [--seed S] [--json]',
  flags: {
    ...dataFlags,
    adapter: { type: 'string', arg: 'ADAPTER_DIR', help: 'PEFT LoRA adapter (default: zero-shot)' },
    split: { type: 'string', default: 'test', choices: ['test', 'val', 'train'], help: 'which split to evaluate' },
    attack: { type: 'string', default: 'none', choices: Attacks, help: 'attack on every test image' },
    epsilon: { type: 'fraction', default: '4/255', help: 'ℓ∞ radius in [0,1] pixels (1/255 or a decimal)' },
    steps: { type: 'int', default: 10, help: 'PGD steps' },
    'step-size': { type: 'fraction', arg: 'α', help: 'PGD step (default ε/4)' },
    restarts: { type: 'int', default: 1, help: 'PGD restarts (the worst case counts)' },
    'no-random-start': { type: 'boolean', help: 'start PGD at x instead of a uniform point in the ε-ball' },
    seed: { type: 'int', default: 1, help: 'seed of the PGD random starts' },
    'batch-size': { type: 'int', default: 32, help: 'images per forward pass' },
    limit: { type: 'int', arg: 'N', help: 'evaluate only the first N images (deterministic subset: every k-th)' },
    json: { type: 'boolean', help: 'print one JSON object on stdout' },
  },
};

export interface EvalResult {
  readonly accuracy: number;
  readonly n: number;
  readonly attack: string;
  readonly epsilon: number;
  readonly loss: number;
}

/** every k-th item so a limited evaluation still covers every class */
export function evenSubset<T>(items: readonly T[], limit: number | undefined): readonly T[] {
  if (!limit || limit >= items.length) return items;
  const stride = items.length / limit;
  return Array.from({ length: limit }, (_, i) => items[Math.floor(i * stride)]);
}

/** Images to evaluate on, preprocessed once to the model's size; sample ids are their positions. */
export interface EvalSet {
  readonly source: SampleSource;
  readonly count: number;
}

export async function evalSet(images: readonly LabeledImage[], dir: ClipModelDir): Promise<EvalSet> {
  return { source: await inMemorySource(images, dir), count: images.length };
}

/** Accuracy of a model (with adapters or zero-shot) on an evaluation set, under an attack. */
export async function evaluate(
  model: ClipModel,
  prompts: readonly (readonly number[])[],
  images: EvalSet,
  lora: LoraWeights | null,
  attack: AttackSpec,
  batchSize: number,
  log: Logger,
  progressLabel = `eval ${attack.attack}`,
): Promise<EvalResult> {
  const { source, count } = images;
  const adapter = lora ? new AdapterTensors(lora) : null;
  const adapters = adapter ? adapter.adapters(null) : null;
  const text = classFeatures(model, prompts, adapters);
  const size = model.config.vision.imageSize;
  const progress = createProgress(progressLabel, count, log);
  let correct = 0;
  let lossSum = 0;
  for (let start = 0; start < count; start += batchSize) {
    const ids = Array.from({ length: Math.min(batchSize, count - start) }, (_, i) => start + i);
    const batch = await source(ids);
    const x = tf.tensor4d(batch.pixels, [ids.length, size, size, 3]);
    const outcome = evaluateBatch(model, adapters, text, x, batch.labels, ids, attack);
    x.dispose();
    correct += outcome.correct;
    lossSum += outcome.lossSum;
    progress.update(start + ids.length, { acc: (correct / (start + ids.length)).toFixed(3) });
  }
  progress.stop();
  text.dispose();
  adapter?.dispose();
  return { accuracy: correct / count, n: count, attack: attack.attack, epsilon: attack.epsilon, loss: lossSum / count };
}

export function attackSpecFrom(flags: FlagValues): AttackSpec {
  const epsilon = flags.epsilon as number;
  if (epsilon < 0) throw invalidArgument(`--epsilon must be ≥ 0, got ${epsilon}`);
  if ((flags.steps as number) < 0) throw invalidArgument(`--steps must be ≥ 0`);
  return {
    attack: flags.attack as AttackSpec['attack'],
    epsilon,
    steps: flags.steps as number,
    stepSize: flags['step-size'] as number | undefined,
    randomStart: flags['no-random-start'] !== true,
    restarts: flags.restarts as number,
    seed: flags.seed as number,
  };
}

export async function runEval(flags: FlagValues, _argv: readonly string[], log: Logger): Promise<void> {
  const attack = attackSpecFrom(flags);
  const backend = await startBackend(flags.backend as string | undefined, log);
  const data = await prepareData(dataSourceFrom(flags), backend, log);
  const lora = flags.adapter ? await loadAdapter(flags.adapter as string, data.dir.config) : null;
  const split = flags.split as 'test' | 'val' | 'train';
  const all = split === 'val' ? data.dataset.val : data.dataset[split];
  if (!all || all.length === 0) throw invalidArgument(`${data.dataset.root}: the ${split} split is empty`);
  const images = evenSubset(all, flags.limit as number | undefined);
  const result = await evaluate(data.model, data.prompts, await evalSet(images, data.dir), lora, attack, flags['batch-size'] as number, log);
  data.model.dispose();
  const out = { ...result, split, adapter: (flags.adapter as string | undefined) ?? null, classes: data.dataset.classNames.length, chance: 1 / data.dataset.classNames.length };
  if (flags.json) process.stdout.write(JSON.stringify(out) + '\n');
  else log.info(`accuracy ${(result.accuracy * 100).toFixed(2)}%`, { n: result.n, attack: result.attack, epsilon: result.epsilon });
}
