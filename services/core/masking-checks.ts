/**
 * Sanity checks against gradient masking (Carlini et al. 2019, "On
 * evaluating adversarial robustness"; Croce & Hein 2020): a defence whose
 * gradients are useless looks robust to gradient attacks only. We flag it
 * when
 *  - some input gradients are exactly zero (of the margin z_y − max_{j≠y}
 *    z_j, which does not saturate as cross-entropy does);
 *  - the black-box Square attack beats the best white-box attack;
 *  - a large ε (default 0.5, the whole pixel range reachable from grey) does
 *    not bring accuracy down to chance;
 *  - more PGD steps, or more restarts, raise accuracy. PGD returns its last
 *    iterate, not its best, so one image of slack is allowed.
 * A batch gives counts (checkBatch); counts add over batches; judgeChecks
 * turns the totals into verdicts.
 */
import * as tf from '@tensorflow/tfjs';
import { margin, type Classifier } from './attacks.ts';
import { attackSpec, evaluateImages, type AttackSpec } from './evaluate.ts';
import { hostTidy } from './scope.ts';

export const defaultCheckEpsilon = 0.5;

/** the evaluations a check needs, derived from the user's attack spec */
export function checkPlan(spec: AttackSpec, checkEpsilon = defaultCheckEpsilon): Readonly<Record<string, AttackSpec>> {
  const base = { ...spec, randomStart: true };
  const longer = Math.max(5 * spec.steps, spec.steps + 1);
  return {
    pgd: attackSpec({ ...base, attack: 'pgd', restarts: 1 }),
    'pgd-more-steps': attackSpec({ ...base, attack: 'pgd', steps: longer, restarts: 1 }),
    'pgd-more-restarts': attackSpec({ ...base, attack: 'pgd', steps: longer, restarts: Math.max(3, spec.restarts) }),
    'apgd-ce': attackSpec({ ...base, attack: 'apgd-ce' }),
    'apgd-t': attackSpec({ ...base, attack: 'apgd-t' }),
    square: attackSpec({ ...base, attack: 'square' }),
    'pgd-large-epsilon': attackSpec({ ...base, attack: 'pgd', epsilon: checkEpsilon, steps: Math.max(spec.steps, 20), stepSize: checkEpsilon / 8, restarts: 1 }),
  };
}

/** totals over the evaluated images */
export interface CheckCounts {
  readonly n: number;
  readonly clean: number;
  /** correctly classified images after each planned evaluation */
  readonly correct: Readonly<Record<string, number>>;
  /** images whose input gradient of the margin is exactly zero */
  readonly zeroGradients: number;
}

/** samples whose margin has an all-zero input gradient */
export function zeroGradientCount(model: Classifier, x: tf.Tensor4D, labels: readonly number[]): number {
  return hostTidy(() => {
    const g = tf.grad((xx: tf.Tensor) => tf.sum(margin(model(xx as tf.Tensor4D), labels)))(x);
    const perSample = tf.max(tf.abs(tf.reshape(g, [x.shape[0], -1])), 1).dataSync();
    return Array.from(perSample).filter((v) => v === 0).length;
  });
}

export function checkBatch(model: Classifier, x: tf.Tensor4D, labels: readonly number[], sampleIds: readonly number[], plan: Readonly<Record<string, AttackSpec>>, onEvaluation?: (name: string) => void): CheckCounts {
  const correct: Record<string, number> = {};
  let clean = 0;
  for (const [name, spec] of Object.entries(plan)) {
    onEvaluation?.(name);
    const outcome = evaluateImages(model, x, labels, sampleIds, spec);
    correct[name] = outcome.correct;
    clean = outcome.perAttack.clean;
  }
  return { n: labels.length, clean, correct, zeroGradients: zeroGradientCount(model, x, labels) };
}

export function addCounts(a: CheckCounts | null, b: CheckCounts): CheckCounts {
  if (!a) return b;
  const correct = Object.fromEntries(Object.entries(b.correct).map(([k, v]) => [k, v + (a.correct[k] ?? 0)]));
  return { n: a.n + b.n, clean: a.clean + b.clean, correct, zeroGradients: a.zeroGradients + b.zeroGradients };
}

export interface CheckVerdict {
  readonly name: string;
  readonly passed: boolean;
  readonly detail: string;
}

export interface CheckReport {
  readonly passed: boolean;
  readonly checks: readonly CheckVerdict[];
  /** accuracy of each planned evaluation, and clean */
  readonly accuracy: Readonly<Record<string, number>>;
  readonly zeroGradients: number;
}

export function judgeChecks(counts: CheckCounts, classes: number, checkEpsilon = defaultCheckEpsilon): CheckReport {
  const { n } = counts;
  const acc = (name: string) => counts.correct[name] / n;
  const pct = (v: number) => `${(100 * v).toFixed(1)}%`;
  const slack = 1 / n;
  const whiteBox = ['pgd', 'pgd-more-steps', 'pgd-more-restarts', 'apgd-ce', 'apgd-t'];
  const bestWhite = whiteBox.reduce((best, name) => (acc(name) < acc(best) ? name : best));
  const chance = 1 / classes;
  const checks: CheckVerdict[] = [
    {
      name: 'gradients-non-zero',
      passed: counts.zeroGradients === 0,
      detail: `${counts.zeroGradients} of ${n} images have an all-zero input gradient of the margin`,
    },
    {
      name: 'square-not-better-than-white-box',
      passed: acc('square') >= acc(bestWhite),
      detail: `Square ${pct(acc('square'))}, best white-box (${bestWhite}) ${pct(acc(bestWhite))}`,
    },
    {
      name: 'large-epsilon-reaches-chance',
      passed: acc('pgd-large-epsilon') <= chance,
      detail: `PGD at ε = ${checkEpsilon}: ${pct(acc('pgd-large-epsilon'))}, chance ${pct(chance)}`,
    },
    {
      name: 'more-steps-no-higher',
      passed: acc('pgd-more-steps') <= acc('pgd') + slack,
      detail: `PGD ${pct(acc('pgd'))} → 5× the steps ${pct(acc('pgd-more-steps'))} (slack: one image)`,
    },
    {
      name: 'more-restarts-no-higher',
      passed: acc('pgd-more-restarts') <= acc('pgd-more-steps') + slack,
      detail: `1 restart ${pct(acc('pgd-more-steps'))} → 3 or more restarts ${pct(acc('pgd-more-restarts'))} (slack: one image)`,
    },
  ];
  const accuracy = { clean: counts.clean / n, ...Object.fromEntries(Object.keys(counts.correct).map((k) => [k, acc(k)])) };
  return { passed: checks.every((c) => c.passed), checks, accuracy, zeroGradients: counts.zeroGradients };
}
