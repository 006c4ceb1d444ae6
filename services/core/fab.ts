/**
 * FAB-T, ℓ∞ (Croce & Hein, ICML 2020, "Minimally distorted adversarial
 * examples with a fast adaptive boundary attack"), targeted as in
 * AutoAttack. For a target t it linearises the decision boundary
 * z_t − z_y = 0 at the current point, projects both the current point and
 * the original onto it (the smallest ℓ∞ move inside [0,1]), and steps to a
 * mix of the two, biased to the original (α ≤ 0.1), extrapolated by η =
 * 1.05. Once a point is misclassified it is recorded if it is the closest so
 * far, and pulled back towards the original (β = 0.9). A sample counts only
 * if its closest adversarial point is within ε; else it is returned as x.
 * The targets are the top `targets` other classes at the clean point.
 */
import * as tf from '@tensorflow/tfjs';
import { BATCHED_ROWS, classRanking, logitAt, onStillRobustBatched, probe, rowsOf, type Classifier } from './attacks.ts';

export interface FabOptions {
  readonly epsilon: number;
  /** iterations per target (100 in AutoAttack) */
  readonly iterations: number;
  /** target classes per sample (9 in AutoAttack, at most C − 1) */
  readonly targets: number;
}

const ALPHA_MAX = 0.1;
const ETA = 1.05;
const BETA = 0.9;

/**
 * The smallest ℓ∞ move d (d with p + d in [0,1]) such that w·(p + d) ≥ b;
 * the largest move towards it when the box does not allow it. For a radius
 * t the best reach is Σ|w_i|·min(t, room_i); t is found by bisection.
 */
export function projectToHalfspace(p: Float32Array, w: Float32Array, b: number): Float32Array {
  const d = new Float32Array(p.length);
  let need = b;
  for (let i = 0; i < p.length; i++) need -= w[i] * p[i];
  if (need <= 0) return d;
  const room = Float32Array.from(p, (v, i) => (w[i] > 0 ? 1 - v : w[i] < 0 ? v : 0));
  const reach = (t: number) => {
    let s = 0;
    for (let i = 0; i < p.length; i++) s += Math.abs(w[i]) * Math.min(t, room[i]);
    return s;
  };
  let hi = room.reduce((a, v) => Math.max(a, v), 0);
  if (reach(hi) > need) {
    let lo = 0;
    for (let k = 0; k < 40; k++) {
      const mid = (lo + hi) / 2;
      if (reach(mid) >= need) hi = mid;
      else lo = mid;
    }
  }
  for (let i = 0; i < p.length; i++) d[i] = Math.sign(w[i]) * Math.min(hi, room[i]);
  return d;
}

const linfNorm = (v: Float32Array): number => v.reduce((a, x) => Math.max(a, Math.abs(x)), 0);

/** One FAB-T run towards one target per sample: the closest misclassified point within ε, else x. */
export function fabRun(model: Classifier, x: tf.Tensor4D, labels: readonly number[], targets: readonly number[], opts: Omit<FabOptions, 'targets'>) {
  const n = x.shape[0];
  const per = x.size / n;
  const x0 = Float32Array.from(x.dataSync());
  const x1 = Float32Array.from(x0);
  const bestNorm = new Float64Array(n).fill(Infinity);
  const bestAdv = Float32Array.from(x0);
  const row = (a: Float32Array, i: number) => a.subarray(i * per, (i + 1) * per);
  for (let it = 0; it < opts.iterations; it++) {
    const at = tf.tidy(() => tf.tensor4d(x1, x.shape));
    const { loss: df, grad } = probe(model, (z) => tf.sub(logitAt(z, targets), logitAt(z, labels)) as tf.Tensor1D, at);
    at.dispose();
    const dg = grad.dataSync() as Float32Array;
    grad.dispose();
    for (let i = 0; i < n; i++) {
      const w = row(dg, i);
      const p1 = row(x1, i);
      const p0 = row(x0, i);
      let b = -df[i];
      for (let j = 0; j < per; j++) b += w[j] * p1[j];
      const d1 = projectToHalfspace(p1, w, b);
      const d0 = projectToHalfspace(p0, w, b);
      const [a1, a0] = [linfNorm(d1), linfNorm(d0)];
      const alpha = a1 + a0 > 0 ? Math.min(Math.max(a1 / (a1 + a0), 0), ALPHA_MAX) : 0;
      for (let j = 0; j < per; j++) p1[j] = Math.min(1, Math.max(0, (p1[j] + ETA * d1[j]) * (1 - alpha) + (p0[j] + ETA * d0[j]) * alpha));
    }
    const predicted = tf.tidy(() => tf.argMax(model(tf.tensor4d(x1, x.shape)), 1).dataSync());
    for (let i = 0; i < n; i++) {
      if (predicted[i] === labels[i]) continue;
      const p1 = row(x1, i);
      const p0 = row(x0, i);
      let norm = 0;
      for (let j = 0; j < per; j++) norm = Math.max(norm, Math.abs(p1[j] - p0[j]));
      if (norm < bestNorm[i]) {
        bestNorm[i] = norm;
        bestAdv.set(p1, i * per);
      }
      for (let j = 0; j < per; j++) p1[j] = p0[j] + BETA * (p1[j] - p0[j]);
    }
  }
  const fooled = Array.from(bestNorm, (v) => v <= opts.epsilon);
  const out = Float32Array.from(x0);
  fooled.forEach((f, i) => f && out.set(row(bestAdv, i), i * per));
  return { xAdv: tf.tensor4d(out, x.shape), fooled };
}

/** FAB-T: one run per target class, the 1st, 2nd, … most likely other class at the clean point, on the samples still robust; several runs side by side in one batch (onStillRobustBatched) */
export function fabTargeted(model: Classifier, x: tf.Tensor4D, labels: readonly number[], opts: FabOptions): tf.Tensor4D {
  const classes = tf.tidy(() => model(rowsOf(x, [0])).shape[1]);
  const targets = Math.max(0, Math.min(opts.targets, classes - 1));
  const ranking = tf.tidy(() => classRanking(model(x)));
  return onStillRobustBatched(x, targets, BATCHED_ROWS, (items, xItems) => {
    const y = items.map((it) => labels[it.row]);
    const t = items.map((it) => ranking[it.row].filter((c) => c !== labels[it.row])[it.a]);
    return fabRun(model, xItems, y, t, opts);
  });
}
