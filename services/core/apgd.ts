/**
 * APGD (Croce & Hein, ICML 2020): PGD without a step size to tune. Each
 * sample starts at step 2ε, moves with momentum 0.75, and halves its step at
 * checkpoints where the loss has not risen in ρ = 75% of the steps since the
 * last one, or where it neither improved nor was halved last time; a halved
 * sample restarts from its best point. Checkpoints come at 22% of the
 * iterations, then at intervals shrinking by 3% of them down to 6%.
 *
 * APGD-CE ascends cross-entropy; APGD-T ascends the targeted DLR loss
 * −(z_y − z_t) / (z_π1 − (z_π3 + z_π4)/2) towards each of the top `targets`
 * other classes in turn, on the samples not yet misclassified.
 */
import * as tf from '@tensorflow/tfjs';
import { classRanking, logitAt, onStillRobust, onStillRobustBatched, probe, BATCHED_ROWS, projectLinf, randomStart, rowsOf, selectRows, type Classifier } from './attacks.ts';
import { crossEntropyPerSample, oneHotLabels } from './objective.ts';
import { Purpose, wordOf } from './rng.ts';

export interface ApgdOptions {
  readonly epsilon: number;
  /** iterations per run (100 in AutoAttack) */
  readonly iterations: number;
  /** runs from fresh random starts, each on the samples still correctly classified (1 in AutoAttack) */
  readonly restarts: number;
  /** keys of sample i's random starts (seed, sample id) */
  readonly startKeys: readonly (readonly number[])[];
}

export interface ApgdTargetedOptions extends ApgdOptions {
  /** target classes per sample: the top `targets` classes other than the prediction (9 in AutoAttack, at most C − 1) */
  readonly targets: number;
}

const MOMENTUM = 0.75;
const RHO = 0.75;

/** the iterations after which APGD checks its step sizes: 0.22·N, then intervals shrinking by 0.03·N to at least 0.06·N */
export function apgdCheckpoints(iterations: number): number[] {
  const out: number[] = [];
  let interval = Math.max(Math.floor(0.22 * iterations), 1);
  const shrink = Math.max(Math.floor(0.03 * iterations), 1);
  const least = Math.max(Math.floor(0.06 * iterations), 1);
  for (let at = interval; at <= iterations; at += interval) {
    out.push(at);
    interval = Math.max(interval - shrink, least);
  }
  return out;
}

/** loss of logits [n,C] per sample; what one APGD run ascends */
export type LogitLoss = (logits: tf.Tensor2D) => tf.Tensor1D;

export const ceLoss = (labels: readonly number[]): LogitLoss => (z) => crossEntropyPerSample(z, oneHotLabels(labels, z.shape[1]));

/** targeted DLR: −(z_y − z_t) / (z_π1 − (z_π3 + z_π4)/2 + 1e-12); with fewer than 4 classes π3, π4 fall back to the last class */
export const dlrTargetedLoss =
  (labels: readonly number[], targets: readonly number[]): LogitLoss =>
  (z) => {
    const ranking = classRanking(z);
    const last = z.shape[1] - 1;
    const at = (r: number) => logitAt(z, ranking.map((order) => order[Math.min(r, last)]));
    const scale = tf.add(tf.sub(at(0), tf.mul(tf.add(at(2), at(3)), 0.5)), 1e-12);
    return tf.neg(tf.div(tf.sub(logitAt(z, labels), logitAt(z, targets)), scale)) as tf.Tensor1D;
  };

/** One APGD run. */
export interface ApgdRun {
  /** per sample: its last misclassified iterate, else its highest-loss iterate */
  readonly xAdv: tf.Tensor4D;
  /** the highest loss per sample */
  readonly bestLoss: Float32Array;
  readonly fooled: readonly boolean[];
}

export function apgdRun(model: Classifier, x: tf.Tensor4D, labels: readonly number[], lossOf: LogitLoss, opts: Omit<ApgdOptions, 'restarts'>, startTag: readonly number[]): ApgdRun {
  const n = x.shape[0];
  const eps = opts.epsilon;
  const checkpoints = new Set(apgdCheckpoints(opts.iterations));
  const stepSize = new Float32Array(n).fill(2 * eps);
  let xAdv = tf.tidy(() => projectLinf(tf.add(x, randomStart(x.shape, eps, opts.startKeys.map((k) => [Purpose.apgdStart, ...k, ...startTag]), 0)), x, eps));
  let at = probe(model, lossOf, xAdv);
  let grad = at.grad;
  let xOld = tf.clone(xAdv);
  let xBest = tf.clone(xAdv);
  let gradBest = tf.clone(grad);
  const bestLoss = Float32Array.from(at.loss);
  const fooled = labels.map((y, i) => at.predicted[i] !== y);
  let xBestAdv = tf.clone(xAdv);
  const history = [Float32Array.from(at.loss)];
  let lastCheck = 0;
  let bestAtLastCheck = Float32Array.from(bestLoss);
  let halvedLastCheck = new Array<boolean>(n).fill(true);
  const replace = <T extends tf.Tensor>(old: T, next: T): T => {
    old.dispose();
    return next;
  };

  for (let i = 0; i < opts.iterations; i++) {
    const a = i === 0 ? 1 : MOMENTUM;
    const next = tf.tidy(() => {
      const eta = tf.tensor4d(stepSize, [n, 1, 1, 1]);
      const z = projectLinf(tf.add(xAdv, tf.mul(eta, tf.sign(grad))), x, eps);
      return projectLinf(tf.add(xAdv, tf.add(tf.mul(tf.sub(z, xAdv), a), tf.mul(tf.sub(xAdv, xOld), 1 - a))), x, eps);
    });
    xOld = replace(xOld, xAdv);
    xAdv = next;
    at = probe(model, lossOf, xAdv);
    grad.dispose();
    grad = at.grad;
    const nowFooled = labels.map((y, k) => at.predicted[k] !== y);
    nowFooled.forEach((f, k) => f && (fooled[k] = true));
    xBestAdv = replace(xBestAdv, selectRows(nowFooled, xAdv, xBestAdv));
    const improved = Array.from(at.loss, (l, k) => l > bestLoss[k]);
    improved.forEach((up, k) => up && (bestLoss[k] = at.loss[k]));
    xBest = replace(xBest, selectRows(improved, xAdv, xBest));
    gradBest = replace(gradBest, selectRows(improved, grad, gradBest));
    history.push(Float32Array.from(at.loss));

    if (checkpoints.has(i + 1)) {
      const span = i + 1 - lastCheck;
      const halve = Array.from({ length: n }, (_, k) => {
        let rises = 0;
        for (let j = history.length - span; j < history.length; j++) if (history[j][k] > history[j - 1][k]) rises++;
        const oscillating = rises <= RHO * span;
        const stalled = !halvedLastCheck[k] && bestAtLastCheck[k] >= bestLoss[k];
        return oscillating || stalled;
      });
      halve.forEach((h, k) => h && (stepSize[k] /= 2));
      xAdv = replace(xAdv, selectRows(halve, xBest, xAdv));
      grad = replace(grad, selectRows(halve, gradBest, grad));
      halvedLastCheck = halve;
      bestAtLastCheck = Float32Array.from(bestLoss);
      lastCheck = i + 1;
    }
  }
  const result = selectRows(fooled, xBestAdv, xBest);
  tf.dispose([xAdv, xOld, grad, gradBest, xBest, xBestAdv]);
  return { xAdv: result, bestLoss, fooled };
}

/** APGD-CE: cross-entropy, `restarts` runs on the samples still correctly classified */
export function apgdCe(model: Classifier, x: tf.Tensor4D, labels: readonly number[], opts: ApgdOptions): tf.Tensor4D {
  return onStillRobust(x, Math.max(1, opts.restarts), (r, rows, xRows) => {
    const y = rows.map((i) => labels[i]);
    return apgdRun(model, xRows, y, ceLoss(y), { ...opts, startKeys: rows.map((i) => opts.startKeys[i]) }, [wordOf('apgd-ce'), r]);
  });
}

/**
 * APGD-T: targeted DLR towards the 1st, 2nd, … `targets`-th most likely other class (at the clean point), `restarts` runs each.
 * The runs of a sample are independent, so several run side by side in one batch (onStillRobustBatched): the same
 * result as one after another, in fewer calls of the model.
 */
export function apgdTargeted(model: Classifier, x: tf.Tensor4D, labels: readonly number[], opts: ApgdTargetedOptions): tf.Tensor4D {
  const classes = tf.tidy(() => model(rowsOf(x, [0])).shape[1]);
  const targets = Math.max(0, Math.min(opts.targets, classes - 1));
  const ranking = tf.tidy(() => classRanking(model(x)));
  const restarts = Math.max(1, opts.restarts);
  return onStillRobustBatched(x, targets * restarts, BATCHED_ROWS, (items, xItems) => {
    const y = items.map((it) => labels[it.row]);
    const t = items.map((it) => ranking[it.row].filter((c) => c !== labels[it.row])[Math.floor(it.a / restarts)]);
    // the start of (rank, restart) is keyed as when each run had its own call
    const startKeys = items.map((it) => [...opts.startKeys[it.row], wordOf('apgd-t'), 1 + Math.floor(it.a / restarts), it.a % restarts]);
    return apgdRun(model, xItems, y, dlrTargetedLoss(y, t), { ...opts, startKeys }, []);
  });
}
