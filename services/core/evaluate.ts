/**
 * Clean and robust accuracy of a (possibly adapted) CLIP: zero-shot
 * classification over the class prompts, under no attack, FGSM or PGD,
 * white box (the text features are part of the attacked model).
 */
import * as tf from '@tensorflow/tfjs';
import { fgsm, pgd, type PgdOptions } from './attacks.ts';
import type { Adapters, ClipModel } from './clip.ts';
import { crossEntropyPerSample, oneHotLabels } from './objective.ts';
import { hostTidy } from './scope.ts';

export const Attacks = ['none', 'fgsm', 'pgd'] as const;
export type AttackName = (typeof Attacks)[number];

/** the attack, and PGD's options (FGSM uses ε only); random starts are keyed by sample id */
export interface AttackSpec extends Omit<PgdOptions, 'sampleIds'> {
  readonly attack: AttackName;
}

export interface BatchOutcome {
  readonly correct: number;
  readonly lossSum: number;
}

/** Class text features through the (adapted) text tower, no dropout: [C, P]. */
export function classFeatures(model: ClipModel, prompts: readonly (readonly number[])[], adapters: Adapters | null): tf.Tensor2D {
  return tf.tidy(() => model.encodeTexts(prompts, adapters));
}

/** Evaluates one batch: images [n,H,W,3] in [0,1], labels, sample ids (keys of random starts). */
export function evaluateBatch(
  model: ClipModel,
  adapters: Adapters | null,
  textFeatures: tf.Tensor2D,
  images: tf.Tensor4D,
  labels: readonly number[],
  sampleIds: readonly number[],
  spec: AttackSpec,
): BatchOutcome {
  return hostTidy(() => {
    const y = oneHotLabels(labels, textFeatures.shape[0]);
    const loss = (x: tf.Tensor4D) => crossEntropyPerSample(model.logits(model.encodeImages(x, adapters), textFeatures), y);
    let x = images;
    if (spec.epsilon > 0 && spec.attack === 'fgsm') x = fgsm(loss, images, spec.epsilon);
    if (spec.epsilon > 0 && spec.attack === 'pgd') {
      x = pgd(loss, images, { ...spec, sampleIds });
    }
    const logits = model.logits(model.encodeImages(x, adapters), textFeatures);
    const predicted = tf.argMax(logits, 1).dataSync();
    const correct = labels.reduce((n, label, i) => n + (predicted[i] === label ? 1 : 0), 0);
    const lossSum = tf.sum(crossEntropyPerSample(logits, y)).dataSync()[0];
    return { correct, lossSum };
  });
}
