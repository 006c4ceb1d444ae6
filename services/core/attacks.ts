/**
 * ℓ∞ attacks in [0,1] pixel space, as pure functions of a per-sample loss.
 * Every result stays in the ε-ball around x and in [0,1].
 */
import * as tf from '@tensorflow/tfjs';
import { Purpose, RandomStream } from './rng.ts';

/** per-sample loss of images [n,H,W,3] → [n] */
export type PerSampleLoss = (x: tf.Tensor4D) => tf.Tensor1D;

const project = (xAdv: tf.Tensor, x: tf.Tensor, eps: number): tf.Tensor4D =>
  tf.clipByValue(tf.add(x, tf.clipByValue(tf.sub(xAdv, x), -eps, eps)), 0, 1) as tf.Tensor4D;

const inputGrad = (loss: PerSampleLoss, x: tf.Tensor4D): tf.Tensor4D => tf.grad((xx: tf.Tensor) => tf.sum(loss(xx as tf.Tensor4D)))(x) as tf.Tensor4D;

/** FGSM: one signed step of size ε. */
export function fgsm(loss: PerSampleLoss, x: tf.Tensor4D, eps: number): tf.Tensor4D {
  return tf.tidy(() => project(tf.add(x, tf.mul(tf.sign(inputGrad(loss, x)), eps)), x, eps));
}

export interface PgdOptions {
  readonly epsilon: number;
  readonly steps: number;
  /** default ε/4 */
  readonly stepSize?: number;
  readonly randomStart: boolean;
  readonly restarts: number;
  /** random starts are keyed by (seed, sample id, restart) */
  readonly seed: number;
  readonly sampleIds: readonly number[];
}

/** uniform noise in [−ε, ε] per sample, from (seed, sample id, restart) */
export function randomStart(shape: readonly number[], eps: number, seed: number, sampleIds: readonly number[], restart: number): tf.Tensor4D {
  const per = shape.slice(1).reduce((a, b) => a * b, 1);
  const data = new Float32Array(sampleIds.length * per);
  sampleIds.forEach((id, i) => {
    const rng = RandomStream.of(Purpose.randomStart, seed, id, restart, 0x5e7a1);
    for (let j = 0; j < per; j++) data[i * per + j] = (2 * rng.uniform() - 1) * eps;
  });
  return tf.tensor4d(data, shape as [number, number, number, number]);
}

/** PGD-k (Madry): optional random start, k signed steps, projection; the worst restart per sample wins. */
export function pgd(loss: PerSampleLoss, x: tf.Tensor4D, opts: PgdOptions): tf.Tensor4D {
  const eps = opts.epsilon;
  const alpha = opts.stepSize ?? eps / 4;
  let best: tf.Tensor4D | null = null;
  let bestLoss: tf.Tensor1D | null = null;
  for (let r = 0; r < Math.max(1, opts.restarts); r++) {
    let xAdv = opts.randomStart ? tf.tidy(() => project(tf.add(x, randomStart(x.shape, eps, opts.seed, opts.sampleIds, r)), x, eps)) : tf.clone(x);
    for (let k = 0; k < opts.steps; k++) {
      const next = tf.tidy(() => project(tf.add(xAdv, tf.mul(tf.sign(inputGrad(loss, xAdv)), alpha)), x, eps));
      xAdv.dispose();
      xAdv = next;
    }
    const l = tf.tidy(() => loss(xAdv));
    if (!best || !bestLoss) {
      best = xAdv;
      bestLoss = l;
      continue;
    }
    const [nb, nl] = tf.tidy(() => {
      const better = tf.greater(l, bestLoss!);
      const mask = tf.reshape(better, [-1, 1, 1, 1]);
      return [tf.where(tf.broadcastTo(mask, x.shape), xAdv, best!) as tf.Tensor4D, tf.where(better, l, bestLoss!) as tf.Tensor1D];
    });
    for (const t of [best, bestLoss, xAdv, l]) t.dispose();
    best = nb;
    bestLoss = nl;
  }
  bestLoss?.dispose();
  return best!;
}

/** Universal PGD: one δ for the whole batch, ascending the summed loss. Returns δ [H,W,3]. */
export function universalPgd(loss: PerSampleLoss, x: tf.Tensor4D, opts: Omit<PgdOptions, 'restarts' | 'sampleIds'>): tf.Tensor3D {
  const eps = opts.epsilon;
  const alpha = opts.stepSize ?? eps / 4;
  const [, h, w, c] = x.shape;
  let delta: tf.Tensor3D = opts.randomStart ? (tf.tidy(() => tf.reshape(randomStart([1, h, w, c], eps, opts.seed, [0], 0), [h, w, c])) as tf.Tensor3D) : tf.zeros([h, w, c]);
  for (let k = 0; k < opts.steps; k++) {
    const next = tf.tidy(() => {
      const g = tf.grad((d: tf.Tensor) => tf.sum(loss(tf.clipByValue(tf.add(x, d), 0, 1) as tf.Tensor4D)))(delta);
      return tf.clipByValue(tf.add(delta, tf.mul(tf.sign(g), alpha)), -eps, eps) as tf.Tensor3D;
    });
    delta.dispose();
    delta = next;
  }
  return delta;
}
