/**
 * CLIP's symmetric InfoNCE: the i-th image and the i-th caption are the only
 * positive pair of row i and of column i; cross-entropy over texts for each
 * image and over images for each text, averaged.
 */
import * as tf from '@tensorflow/tfjs';

/** logitsPerImage: [B, B] → scalar */
export function symmetricInfoNce(logitsPerImage: tf.Tensor2D): tf.Scalar {
  const n = logitsPerImage.shape[0];
  const diagonal = tf.eye(n); // [B, B]
  const ce = (logits: tf.Tensor2D) => tf.neg(tf.mean(tf.sum(tf.mul(diagonal, tf.logSoftmax(logits)), 1)));
  return tf.div(tf.add(ce(logitsPerImage), ce(tf.transpose(logitsPerImage))), 2) as tf.Scalar;
}
