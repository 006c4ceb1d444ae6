/**
 * AutoAttack, standard version (Croce & Hein, ICML 2020): APGD-CE, APGD-T,
 * FAB-T and Square in this order, each on the points every earlier attack
 * left correctly classified; a point counts as robust only if it survives
 * all four. Each component draws its randomness per sample, so a point's
 * fate does not depend on which others are still in the batch.
 */
import * as tf from '@tensorflow/tfjs';
import { apgdCe, apgdTargeted } from './apgd.ts';
import { replaceRows, rowsOf, type Classifier } from './attacks.ts';
import { fabTargeted } from './fab.ts';
import { square } from './square.ts';

export const AutoAttackComponents = ['apgd-ce', 'apgd-t', 'fab-t', 'square'] as const;
export type AutoAttackComponent = (typeof AutoAttackComponents)[number];

export interface AutoAttackOptions {
  readonly epsilon: number;
  /** APGD and FAB-T iterations (100) */
  readonly iterations: number;
  /** APGD-CE restarts (1) */
  readonly restarts: number;
  /** APGD-T and FAB-T target classes (9) */
  readonly targets: number;
  /** Square queries (5,000) */
  readonly queries: number;
  /** keys of each sample's random streams (seed, sample id) */
  readonly startKeys: readonly (readonly number[])[];
}

export interface AutoAttackResult {
  readonly xAdv: tf.Tensor4D;
  /** per sample: still correctly classified at the clean point and after each component */
  readonly robustAfter: Readonly<Record<'clean' | AutoAttackComponent, readonly boolean[]>>;
}

const predictions = (model: Classifier, x: tf.Tensor4D): Int32Array => tf.tidy(() => tf.argMax(model(x), 1).dataSync() as Int32Array);

/** one component on some rows: x, labels and keys of those rows */
export function runComponent(name: AutoAttackComponent, model: Classifier, x: tf.Tensor4D, labels: readonly number[], opts: AutoAttackOptions): tf.Tensor4D {
  const { epsilon, iterations, restarts, targets, queries, startKeys } = opts;
  switch (name) {
    case 'apgd-ce':
      return apgdCe(model, x, labels, { epsilon, iterations, restarts, startKeys });
    case 'apgd-t':
      return apgdTargeted(model, x, labels, { epsilon, iterations, restarts: 1, targets, startKeys });
    case 'fab-t':
      return fabTargeted(model, x, labels, { epsilon, iterations, targets });
    case 'square':
      return square(model, x, labels, { epsilon, queries, startKeys });
  }
}

export function autoAttack(model: Classifier, x: tf.Tensor4D, labels: readonly number[], opts: AutoAttackOptions, onComponent?: (name: AutoAttackComponent, robust: number) => void): AutoAttackResult {
  const clean = predictions(model, x);
  const robust = labels.map((y, i) => clean[i] === y);
  const robustAfter = { clean: [...robust] } as Record<'clean' | AutoAttackComponent, boolean[]>;
  let out = tf.clone(x);
  for (const name of AutoAttackComponents) {
    const rows = robust.flatMap((r, i) => (r ? [i] : []));
    if (rows.length > 0) {
      const xRows = rowsOf(x, rows);
      const y = rows.map((i) => labels[i]);
      const adv = runComponent(name, model, xRows, y, { ...opts, startKeys: rows.map((i) => opts.startKeys[i]) });
      const predicted = predictions(model, adv);
      const fooled = rows.filter((_, k) => predicted[k] !== y[k]);
      const fooledRows = rows.flatMap((_, k) => (predicted[k] !== y[k] ? [k] : []));
      if (fooled.length > 0) {
        const advFooled = rowsOf(adv, fooledRows);
        const next = replaceRows(out, fooled, advFooled);
        advFooled.dispose();
        out.dispose();
        out = next;
        for (const i of fooled) robust[i] = false;
      }
      tf.dispose([xRows, adv]);
    }
    robustAfter[name] = [...robust];
    onComponent?.(name, robust.filter(Boolean).length);
  }
  return { xAdv: out, robustAfter };
}
