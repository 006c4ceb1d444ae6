/**
 * Evaluation of a model (with adapters or zero-shot) on a set of images:
 * accuracy under an attack (per AutoAttack component too) and the
 * gradient-masking checks; what `advclip eval` and the demo run.
 */
import * as tf from '@tensorflow/tfjs';
import type { ClipModel } from '../core/clip.ts';
import { classFeatures, clipClassifier, evaluateBatch, reportedAttacks, type AttackSpec } from '../core/evaluate.ts';
import { addCounts, checkBatch, checkPlan, judgeChecks, type CheckCounts, type CheckReport } from '../core/masking-checks.ts';
import { AdapterTensors, type SampleSource } from '../core/shard.ts';
import type { LoraWeights } from '../core/lora.ts';
import type { LabeledImage } from '../io/dataset.ts';
import type { ClipModelDir } from '../io/model-dir.ts';
import type { Logger } from '../protocol/log.ts';
import { inMemorySource } from './prepare.ts';
import { createProgress } from './progress.ts';

export interface EvalResult {
  readonly accuracy: number;
  readonly n: number;
  readonly attack: string;
  readonly epsilon: number;
  readonly loss: number;
  /** accuracy at the clean point ('clean') and after each reported attack (AutoAttack: after each component, in order) */
  readonly per_attack: Readonly<Record<string, number>>;
  readonly seconds: number;
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

/** Runs `each` on every batch of an evaluation set, with a progress line on stderr. */
async function forBatches(
  images: EvalSet,
  size: number,
  batchSize: number,
  progress: { update: (done: number, extra?: Record<string, string>) => void; stop: () => void },
  each: (x: tf.Tensor4D, labels: readonly number[], ids: readonly number[]) => Record<string, string> | undefined,
): Promise<void> {
  const { source, count } = images;
  for (let start = 0; start < count; start += batchSize) {
    const ids = Array.from({ length: Math.min(batchSize, count - start) }, (_, i) => start + i);
    const batch = await source(ids);
    const x = tf.tensor4d(batch.pixels, [ids.length, size, size, 3]);
    try {
      progress.update(start + ids.length, each(x, batch.labels, ids));
    } finally {
      x.dispose();
    }
  }
  progress.stop();
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
  const began = performance.now();
  const adapter = lora ? new AdapterTensors(lora) : null;
  const adapters = adapter ? adapter.adapters(null) : null;
  const text = classFeatures(model, prompts, adapters);
  const progress = createProgress(progressLabel, images.count, log);
  let correct = 0;
  let lossSum = 0;
  let done = 0;
  const perAttack: Record<string, number> = { clean: 0 };
  for (const name of reportedAttacks(attack.attack)) perAttack[name] = 0;
  const onStage = attack.attack === 'autoattack' ? (name: string, robust: number) => log.info(`autoattack: ${name} done on this batch`, { robust }) : undefined;
  await forBatches(images, model.config.vision.imageSize, batchSize, progress, (x, labels, ids) => {
    const outcome = evaluateBatch(model, adapters, text, x, labels, ids, attack, onStage);
    correct += outcome.correct;
    lossSum += outcome.lossSum;
    done += ids.length;
    for (const [name, n] of Object.entries(outcome.perAttack)) perAttack[name] = (perAttack[name] ?? 0) + n;
    return { acc: (correct / done).toFixed(3) };
  });
  text.dispose();
  adapter?.dispose();
  const count = images.count;
  const per_attack = Object.fromEntries(Object.entries(perAttack).map(([k, v]) => [k, v / count]));
  return { accuracy: correct / count, n: count, attack: attack.attack, epsilon: attack.epsilon, loss: lossSum / count, per_attack, seconds: (performance.now() - began) / 1000 };
}

/** The gradient-masking checks of `--check` on an evaluation set. */
export async function checkMasking(
  model: ClipModel,
  prompts: readonly (readonly number[])[],
  images: EvalSet,
  lora: LoraWeights | null,
  attack: AttackSpec,
  checkEpsilon: number,
  batchSize: number,
  log: Logger,
): Promise<CheckReport> {
  const adapter = lora ? new AdapterTensors(lora) : null;
  const adapters = adapter ? adapter.adapters(null) : null;
  const text = classFeatures(model, prompts, adapters);
  const plan = checkPlan(attack, checkEpsilon);
  const progress = createProgress('eval --check', images.count, log);
  let counts: CheckCounts | null = null;
  await forBatches(images, model.config.vision.imageSize, batchSize, progress, (x, labels, ids) => {
    counts = addCounts(counts, checkBatch(clipClassifier(model, adapters, text), x, labels, ids, plan, (name) => log.debug(`check: ${name}`, { images: ids.length })));
    return undefined;
  });
  text.dispose();
  adapter?.dispose();
  return judgeChecks(counts!, prompts.length, checkEpsilon);
}
