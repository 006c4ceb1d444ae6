import * as tf from '@tensorflow/tfjs';

/**
 * Runs fn and disposes every tensor it made; for work whose result lives on
 * the host (numbers, Float32Arrays), which tf.tidy's types do not admit.
 */
export function hostTidy<T>(fn: () => T): T {
  tf.engine().startScope();
  try {
    return fn();
  } finally {
    tf.engine().endScope();
  }
}
