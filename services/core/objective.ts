/**
 * The loss F(W, δ) of AdvCLIP-LoRA on one chunk of images: cross-entropy of
 * CLIP's logits over the class prompts, at clip01(x + δ). Summed (not
 * averaged) over the chunk: the reduction divides once, by the minibatch.
 */
import * as tf from '@tensorflow/tfjs';
import type { Adapters, ClipModel } from './clip.ts';

/** Σ_i CE(logits_i, y_i) for logits [n, C] and labels as a one-hot [n, C]. */
export function crossEntropySum(logits: tf.Tensor2D, oneHot: tf.Tensor2D): tf.Scalar {
  return tf.neg(tf.sum(tf.mul(oneHot, tf.logSoftmax(logits)))) as tf.Scalar;
}

export function oneHotLabels(labels: readonly number[], classes: number): tf.Tensor2D {
  const data = new Float32Array(labels.length * classes);
  labels.forEach((y, i) => (data[i * classes + y] = 1));
  return tf.tensor2d(data, [labels.length, classes]);
}

/** Per-sample CE [n] (for attacks that need each sample's own loss). */
export function crossEntropyPerSample(logits: tf.Tensor2D, oneHot: tf.Tensor2D): tf.Tensor1D {
  return tf.neg(tf.sum(tf.mul(oneHot, tf.logSoftmax(logits)), 1)) as tf.Tensor1D;
}

/**
 * Loss of images x (in [0,1], [n,H,W,3]) perturbed by δ (broadcast [H,W,3] or
 * per-sample [n,H,W,3]) against fixed class text features [C, P].
 */
export function perturbedLoss(
  model: ClipModel,
  images: tf.Tensor4D,
  delta: tf.Tensor | null,
  textFeatures: tf.Tensor2D,
  oneHot: tf.Tensor2D,
  adapters: Adapters | null,
): tf.Scalar {
  const x = delta ? (tf.clipByValue(tf.add(images, delta), 0, 1) as tf.Tensor4D) : images;
  return crossEntropySum(model.logits(model.encodeImages(x, adapters), textFeatures), oneHot);
}
