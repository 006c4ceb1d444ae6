/**
 * ℓ∞ attacks in [0,1] pixel space: the pieces every attack shares (the one
 * projection, keyed random starts, the classifier and its losses) and the
 * gradient attacks FGSM and PGD. PGD is also the per-sample inner
 * maximisation of training (shard.ts). APGD, FAB-T, Square and AutoAttack
 * have a file each. Every result stays in the ε-ball around x and in [0,1].
 */
import * as tf from '@tensorflow/tfjs';
import { crossEntropyPerSample, oneHotLabels } from './objective.ts';
import { Purpose, RandomStream } from './rng.ts';

/** A classifier in pixel space: images [n,H,W,3] in [0,1] → logits [n,C]. What the attacks attack. */
export type Classifier = (x: tf.Tensor4D) => tf.Tensor2D;

/** per-sample loss of images [n,H,W,3] → [n] at ascent step `iteration` (training varies its dropout masks by it; a fixed model ignores it) */
export type PerSampleLoss = (x: tf.Tensor4D, iteration?: number) => tf.Tensor1D;

/** the ascent direction of a step: the gradient's sign (steepest ℓ∞ ascent) or the raw gradient */
export const StepRules = ['sign', 'grad'] as const;
export type StepRule = (typeof StepRules)[number];

/** v clamped to [−ε, ε]: the ℓ∞ ball around 0 (a universal δ lives there) */
export const clampToBall = (v: tf.Tensor, eps: number): tf.Tensor => tf.clipByValue(v, -eps, eps);

/** P: the ℓ∞ projection of every attack, onto the ε-ball around x and then into [0,1] */
export const projectLinf = (xAdv: tf.Tensor, x: tf.Tensor, eps: number): tf.Tensor4D =>
  tf.clipByValue(tf.add(x, clampToBall(tf.sub(xAdv, x), eps)), 0, 1) as tf.Tensor4D;

/** cross-entropy of a classifier against labels, per sample */
export function crossEntropyLoss(model: Classifier, labels: readonly number[], classes: number): (x: tf.Tensor4D) => tf.Tensor1D {
  return (x) => crossEntropyPerSample(model(x), oneHotLabels(labels, classes));
}

const inputGrad = (loss: PerSampleLoss, x: tf.Tensor4D, iteration: number): tf.Tensor4D =>
  tf.grad((xx: tf.Tensor) => tf.sum(loss(xx as tf.Tensor4D, iteration)))(x) as tf.Tensor4D;

/** FGSM: one signed step of size ε. */
export function fgsm(loss: PerSampleLoss, x: tf.Tensor4D, eps: number): tf.Tensor4D {
  return tf.tidy(() => projectLinf(tf.add(x, tf.mul(tf.sign(inputGrad(loss, x, 0)), eps)), x, eps));
}

export interface PgdOptions {
  readonly epsilon: number;
  readonly steps: number;
  /** default ε/4 */
  readonly stepSize?: number;
  /** default 'sign' */
  readonly stepRule?: StepRule;
  readonly randomStart: boolean;
  readonly restarts: number;
  /** the random start of sample i in restart r is keyed by (...startKeys[i], r): (seed, sample id) in evaluation, (seed, step, round, sample) in training */
  readonly startKeys: readonly (readonly number[])[];
}

/** random-start keys of evaluation: (seed, sample id) */
export const evalStartKeys = (seed: number, sampleIds: readonly number[]): number[][] => sampleIds.map((id) => [seed, id]);

/** uniform noise in [−ε, ε] per sample, from (...keys[i], restart) */
export function randomStart(shape: readonly number[], eps: number, keys: readonly (readonly number[])[], restart: number): tf.Tensor4D {
  const per = shape.slice(1).reduce((a, b) => a * b, 1);
  const data = new Float32Array(keys.length * per);
  keys.forEach((key, i) => {
    const rng = RandomStream.of(Purpose.randomStart, ...key, restart, 0x5e7a1);
    for (let j = 0; j < per; j++) data[i * per + j] = (2 * rng.uniform() - 1) * eps;
  });
  return tf.tensor4d(data, shape as [number, number, number, number]);
}

/** one projected ascent step from xAdv along g */
const ascentStep = (xAdv: tf.Tensor4D, g: tf.Tensor, x: tf.Tensor4D, eps: number, alpha: number, rule: StepRule): tf.Tensor4D =>
  projectLinf(tf.add(xAdv, tf.mul(rule === 'sign' ? tf.sign(g) : g, alpha)), x, eps);

/**
 * PGD-k (Madry): optional random start, k projected steps (signed by
 * default), the final iterate; with restarts, the highest-loss restart per
 * sample wins. The loss of iteration k is loss(·, k); the restart comparison
 * uses iteration `steps`.
 */
export function pgd(loss: PerSampleLoss, x: tf.Tensor4D, opts: PgdOptions): tf.Tensor4D {
  const eps = opts.epsilon;
  const alpha = opts.stepSize ?? eps / 4;
  const rule = opts.stepRule ?? 'sign';
  if (opts.startKeys.length !== x.shape[0]) throw new RangeError(`pgd: ${opts.startKeys.length} start keys for ${x.shape[0]} images`);
  let best: tf.Tensor4D | null = null;
  let bestLoss: tf.Tensor1D | null = null;
  const restarts = Math.max(1, opts.restarts);
  for (let r = 0; r < restarts; r++) {
    let xAdv = opts.randomStart ? tf.tidy(() => projectLinf(tf.add(x, randomStart(x.shape, eps, opts.startKeys, r)), x, eps)) : tf.clone(x);
    for (let k = 0; k < opts.steps; k++) {
      const next = tf.tidy(() => ascentStep(xAdv, inputGrad(loss, xAdv, k), x, eps, alpha, rule));
      xAdv.dispose();
      xAdv = next;
    }
    if (restarts === 1) return xAdv;
    const l = tf.tidy(() => loss(xAdv, opts.steps));
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
export function universalPgd(loss: PerSampleLoss, x: tf.Tensor4D, opts: Omit<PgdOptions, 'restarts' | 'startKeys'> & { readonly seed: number }): tf.Tensor3D {
  const eps = opts.epsilon;
  const alpha = opts.stepSize ?? eps / 4;
  const rule = opts.stepRule ?? 'sign';
  const [, h, w, c] = x.shape;
  let delta: tf.Tensor3D = opts.randomStart ? (tf.tidy(() => tf.reshape(randomStart([1, h, w, c], eps, [[opts.seed, 0]], 0), [h, w, c])) as tf.Tensor3D) : tf.zeros([h, w, c]);
  for (let k = 0; k < opts.steps; k++) {
    const next = tf.tidy(() => {
      const g = tf.grad((d: tf.Tensor) => tf.sum(loss(tf.clipByValue(tf.add(x, d), 0, 1) as tf.Tensor4D, k)))(delta);
      return clampToBall(tf.add(delta, tf.mul(rule === 'sign' ? tf.sign(g) : g, alpha)), eps) as tf.Tensor3D;
    });
    delta.dispose();
    delta = next;
  }
  return delta;
}

/** A classifier's loss, gradient and prediction at x, from one forward and one backward pass. */
export interface Probe {
  /** per-sample loss [n] */
  readonly loss: Float32Array;
  /** ∇_x Σ loss [n,H,W,3]; the caller disposes it */
  readonly grad: tf.Tensor4D;
  /** argmax of the logits [n] */
  readonly predicted: Int32Array;
}

export function probe(model: Classifier, lossOf: (logits: tf.Tensor2D) => tf.Tensor1D, x: tf.Tensor4D): Probe {
  let loss: Float32Array = new Float32Array(0);
  let predicted: Int32Array = new Int32Array(0);
  const grad = tf.tidy(() =>
    tf.grad((xx: tf.Tensor) => {
      const z = model(xx as tf.Tensor4D);
      const l = lossOf(z);
      loss = l.dataSync() as Float32Array;
      predicted = tf.argMax(z, 1).dataSync() as Int32Array;
      return tf.sum(l);
    })(x),
  ) as tf.Tensor4D;
  return { loss, grad, predicted };
}

/** per-sample rows: a where mask[i], else b */
export const selectRows = <T extends tf.Tensor>(mask: readonly boolean[], a: T, b: T): T =>
  tf.tidy(() => tf.where(tf.broadcastTo(tf.reshape(tf.tensor1d(mask.map(Number), 'bool'), [-1, ...a.shape.slice(1).map(() => 1)]), a.shape), a, b) as T);

/** logits[i, index[i]] as [n], differentiable in logits */
export const logitAt = (logits: tf.Tensor2D, index: readonly number[]): tf.Tensor1D => tf.sum(tf.mul(logits, oneHotLabels(index, logits.shape[1])), 1) as tf.Tensor1D;

/** class indices of each row, highest logit first [n][C] */
export function classRanking(logits: tf.Tensor2D): number[][] {
  const [n, c] = logits.shape;
  const order = tf.tidy(() => tf.topk(logits, c).indices.dataSync());
  return Array.from({ length: n }, (_, i) => Array.from(order.subarray(i * c, (i + 1) * c)));
}

/** the margin z_y − max_{j≠y} z_j [n]: negative exactly when the sample is misclassified */
export function margin(logits: tf.Tensor2D, labels: readonly number[]): tf.Tensor1D {
  const ranking = classRanking(logits);
  const other = labels.map((y, i) => (ranking[i][0] === y ? ranking[i][1] : ranking[i][0]));
  return tf.sub(logitAt(logits, labels), logitAt(logits, other)) as tf.Tensor1D;
}

/** rows of x at some indices */
export const rowsOf = (x: tf.Tensor4D, indices: readonly number[]): tf.Tensor4D => tf.tidy(() => tf.gather(x, tf.tensor1d(indices as number[], 'int32')) as tf.Tensor4D);

/** x with rows[k] replaced by row k of rowsNew */
export function replaceRows(x: tf.Tensor4D, rows: readonly number[], rowsNew: tf.Tensor4D): tf.Tensor4D {
  const per = x.size / x.shape[0];
  const data = Float32Array.from(x.dataSync());
  const news = rowsNew.dataSync();
  rows.forEach((r, k) => data.set(news.subarray(k * per, (k + 1) * per), r * per));
  return tf.tensor4d(data, x.shape);
}

/**
 * Runs `attempt` on the samples not yet misclassified, each attempt in turn,
 * keeping each sample's point from the attempt that misclassified it (else
 * from the last attempt). attempt gets the rows' positions in x.
 */
export function onStillRobust(
  x: tf.Tensor4D,
  attempts: number,
  attempt: (a: number, rows: readonly number[], xRows: tf.Tensor4D) => { xAdv: tf.Tensor4D; fooled: readonly boolean[] },
): tf.Tensor4D {
  let out = tf.clone(x);
  const fooled = new Array<boolean>(x.shape[0]).fill(false);
  for (let a = 0; a < attempts; a++) {
    const rows = fooled.flatMap((f, i) => (f ? [] : [i]));
    if (rows.length === 0) break;
    const xRows = rowsOf(x, rows);
    const run = attempt(a, rows, xRows);
    xRows.dispose();
    const merged = replaceRows(out, rows, run.xAdv);
    rows.forEach((r, k) => run.fooled[k] && (fooled[r] = true));
    run.xAdv.dispose();
    out.dispose();
    out = merged;
  }
  return out;
}

/** images per call of the model when attempts run side by side: below it the call's fixed cost dominates, above it memory grows */
export const BATCHED_ROWS = 64;

/** one attempt on one sample: attempt a on row `row` of x */
export interface AttemptItem {
  readonly a: number;
  readonly row: number;
}

/**
 * onStillRobust with a sample's attempts side by side: attempts of a sample
 * are independent of each other, so a group of them runs as one batch (item
 * k = one attempt on one row, at most maxRows items, at least one attempt
 * per group) on the samples no earlier group fooled. A sample keeps the
 * point of its first attempt that misclassified it, else of its last: what
 * onStillRobust returns, from fewer and larger calls of the model.
 */
export function onStillRobustBatched(
  x: tf.Tensor4D,
  attempts: number,
  maxRows: number,
  attempt: (items: readonly AttemptItem[], xItems: tf.Tensor4D) => { xAdv: tf.Tensor4D; fooled: readonly boolean[] },
): tf.Tensor4D {
  let out = tf.clone(x);
  const fooled = new Array<boolean>(x.shape[0]).fill(false);
  for (let first = 0; first < attempts; ) {
    const rows = fooled.flatMap((f, i) => (f ? [] : [i]));
    if (rows.length === 0) break;
    const group = Math.min(attempts - first, Math.max(1, Math.floor(maxRows / rows.length)));
    const items = Array.from({ length: group }, (_, g) => rows.map((row) => ({ a: first + g, row }))).flat();
    const xItems = rowsOf(x, items.map((it) => it.row));
    const run = attempt(items, xItems);
    xItems.dispose();
    // per row: its first fooling attempt in the group, else its last attempt
    const chosen = rows.map((_, k) => {
      for (let g = 0; g < group; g++) if (run.fooled[g * rows.length + k]) return { item: g * rows.length + k, fooled: true };
      return { item: (group - 1) * rows.length + k, fooled: false };
    });
    const picked = rowsOf(run.xAdv, chosen.map((c) => c.item));
    const merged = replaceRows(out, rows, picked);
    rows.forEach((r, k) => chosen[k].fooled && (fooled[r] = true));
    tf.dispose([picked, run.xAdv, out]);
    out = merged;
    first += group;
  }
  return out;
}

