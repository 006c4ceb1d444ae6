/**
 * Square attack, ℓ∞ (Andriushchenko et al., ECCV 2020): a score-based
 * black-box random search that never asks for a gradient. It starts from
 * vertical stripes of ±ε, then each query sets one random square window to
 * ±ε per channel and keeps the change when the margin z_y − max_{j≠y} z_j
 * falls. The window's area is a fraction p of the image, from p_init = 0.8
 * halving on AutoAttack's schedule (scaled to the query budget). Each sample
 * draws from its own stream (seed, sample id), so a sample's result does not
 * depend on the batch it is in; a sample stops once misclassified.
 */
import * as tf from '@tensorflow/tfjs';
import type { Classifier } from './attacks.ts';
import { Purpose, RandomStream } from './rng.ts';

export interface SquareOptions {
  readonly epsilon: number;
  /** forward passes per sample (5,000 in AutoAttack) */
  readonly queries: number;
  /** initial window area as a fraction of the image (0.8 in AutoAttack) */
  readonly pInit?: number;
  /** keys of each sample's random stream (seed, sample id) */
  readonly startKeys: readonly (readonly number[])[];
}

/** the window fraction at query q of a budget: AutoAttack's schedule on 10,000 queries, rescaled */
export function squareFraction(pInit: number, q: number, queries: number): number {
  const it = Math.floor((q / queries) * 10000);
  const halvings = [10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000].filter((at) => it > at).length;
  return pInit / 2 ** halvings;
}

export function square(model: Classifier, x: tf.Tensor4D, labels: readonly number[], opts: SquareOptions): tf.Tensor4D {
  const [n, h, w, c] = x.shape;
  const per = h * w * c;
  const eps = opts.epsilon;
  const pInit = opts.pInit ?? 0.8;
  const clean = x.dataSync() as Float32Array;
  const rngs = opts.startKeys.map((k) => RandomStream.of(Purpose.squareSearch, ...k));
  const at = (i: number, row: number, col: number, ch: number) => i * per + (row * w + col) * c + ch;
  const clip01 = (v: number) => Math.min(1, Math.max(0, v));
  // margin z_y − max_{j≠y} z_j from one download of the logits: each query is one forward pass and one read
  const marginsOf = (data: Float32Array, rows: readonly number[]): Float32Array => {
    const z = tf.tidy(() => model(tf.tensor4d(data, [rows.length, h, w, c])).dataSync() as Float32Array);
    const classes = z.length / rows.length;
    return Float32Array.from(rows, (i, k) => {
      const y = labels[i];
      let other = -Infinity;
      for (let j = 0; j < classes; j++) if (j !== y && z[k * classes + j] > other) other = z[k * classes + j];
      return z[k * classes + y] - other;
    });
  };

  const best = new Float32Array(n * per);
  for (let i = 0; i < n; i++) {
    for (let col = 0; col < w; col++) {
      for (let ch = 0; ch < c; ch++) {
        const s = rngs[i].uniform() < 0.5 ? -eps : eps;
        for (let row = 0; row < h; row++) best[at(i, row, col, ch)] = clip01(clean[at(i, row, col, ch)] + s);
      }
    }
  }
  const all = [...Array(n).keys()];
  const bestMargin = Float32Array.from(marginsOf(best, all));

  for (let q = 1; q < opts.queries; q++) {
    const active = all.filter((i) => bestMargin[i] > 0);
    if (active.length === 0) break;
    const side = Math.max(1, Math.min(Math.round(Math.sqrt(squareFraction(pInit, q, opts.queries) * h * w)), Math.min(h, w) - 1));
    const candidates = new Float32Array(active.length * per);
    active.forEach((i, k) => {
      candidates.set(best.subarray(i * per, (i + 1) * per), k * per);
      const rng = rngs[i];
      const top = rng.below(h - side + 1);
      const left = rng.below(w - side + 1);
      // redraw the signs while the window would not change (AutoAttack does the same)
      for (let attempt = 0; attempt < 8; attempt++) {
        let changed = false;
        for (let ch = 0; ch < c; ch++) {
          const s = rng.uniform() < 0.5 ? -eps : eps;
          for (let row = top; row < top + side; row++) {
            for (let col = left; col < left + side; col++) {
              const v = clip01(clean[at(i, row, col, ch)] + s);
              const j = at(k, row, col, ch);
              if (Math.abs(v - best[at(i, row, col, ch)]) > 1e-7) changed = true;
              candidates[j] = v;
            }
          }
        }
        if (changed) break;
      }
    });
    const m = marginsOf(candidates, active);
    active.forEach((i, k) => {
      if (m[k] < bestMargin[i]) {
        bestMargin[i] = m[k];
        best.set(candidates.subarray(k * per, (k + 1) * per), i * per);
      }
    });
  }
  return tf.tensor4d(best, x.shape);
}
