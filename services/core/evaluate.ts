/**
 * Clean and robust accuracy of a (possibly adapted) CLIP: zero-shot
 * classification over the class prompts, under no attack or one of the ℓ∞
 * attacks, white box (the text features are part of the attacked model).
 */
import * as tf from '@tensorflow/tfjs';
import { crossEntropyLoss, evalStartKeys, fgsm, pgd, replaceRows, rowsOf, type Classifier } from './attacks.ts';
import { autoAttack, AutoAttackComponents, runComponent, type AutoAttackComponent, type AutoAttackOptions } from './autoattack.ts';
import type { Adapters, ClipModel } from './clip.ts';
import { invalidArgument } from './errors.ts';
import { crossEntropyPerSample, oneHotLabels } from './objective.ts';
import { hostTidy } from './scope.ts';

export const Attacks = ['none', 'fgsm', 'pgd', 'apgd-ce', 'apgd-t', 'fab-t', 'square', 'autoattack'] as const;
export type AttackName = (typeof Attacks)[number];

export interface AttackSpec {
  readonly attack: AttackName;
  /** ℓ∞ radius in [0,1] pixels */
  readonly epsilon: number;
  /** PGD steps */
  readonly steps: number;
  /** PGD step (default ε/4) */
  readonly stepSize?: number;
  /** PGD starts at a uniform point of the ε-ball */
  readonly randomStart: boolean;
  /** PGD and APGD-CE restarts (the worst case counts) */
  readonly restarts: number;
  /** APGD and FAB-T iterations */
  readonly iterations: number;
  /** Square queries per image */
  readonly queries: number;
  /** APGD-T and FAB-T target classes (at most C − 1) */
  readonly targets: number;
  /** seeds the random starts and Square's search, keyed with each sample id */
  readonly seed: number;
}

/** the defaults of RobustBench's AutoAttack (standard) and of our PGD-10 */
export const attackDefaults = { steps: 10, randomStart: true, restarts: 1, iterations: 100, queries: 5000, targets: 9, seed: 1 } as const;

/** A full, validated, frozen attack spec from the fields given and the defaults. */
export function attackSpec(given: Partial<AttackSpec> & Pick<AttackSpec, 'attack' | 'epsilon'>): AttackSpec {
  const s = { ...attackDefaults, ...Object.fromEntries(Object.entries(given).filter(([, v]) => v !== undefined)) } as AttackSpec;
  const check = (ok: boolean, message: string) => {
    if (!ok) throw invalidArgument(message);
  };
  check(Attacks.includes(s.attack), `--attack must be one of ${Attacks.join('|')}, got "${s.attack}"`);
  check(s.epsilon >= 0 && s.epsilon <= 1, `--epsilon must be in [0, 1], got ${s.epsilon}`);
  for (const [flag, v] of [['steps', s.steps], ['iterations', s.iterations], ['targets', s.targets]] as const) check(Number.isInteger(v) && v >= 0, `--${flag} must be a non-negative integer, got ${v}`);
  for (const [flag, v] of [['restarts', s.restarts], ['queries', s.queries]] as const) check(Number.isInteger(v) && v >= 1, `--${flag} must be a positive integer, got ${v}`);
  check(s.stepSize === undefined || s.stepSize > 0, `--step-size must be > 0, got ${s.stepSize}`);
  return Object.freeze(s);
}

/** the attacks whose accuracy an evaluation reports, in order: AutoAttack's components, or the one attack */
export const reportedAttacks = (attack: AttackName): readonly string[] => (attack === 'autoattack' ? AutoAttackComponents : attack === 'none' ? [] : [attack]);

export interface AttackOutcome {
  readonly xAdv: tf.Tensor4D;
  /** per reported attack (and 'clean'): which samples are still correctly classified after it */
  readonly robustAfter: Readonly<Record<string, readonly boolean[]>>;
}

const componentOptions = (spec: AttackSpec, startKeys: readonly (readonly number[])[]): AutoAttackOptions => ({
  epsilon: spec.epsilon,
  iterations: spec.iterations,
  restarts: spec.restarts,
  targets: spec.targets,
  queries: spec.queries,
  startKeys,
});

/** an attack run only on the images classified correctly at the clean point (the others are not robust anyway), the rest left at x */
function onCleanCorrect(x: tf.Tensor4D, clean: readonly boolean[], attack: (rows: readonly number[], xRows: tf.Tensor4D) => tf.Tensor4D): tf.Tensor4D {
  const rows = clean.flatMap((c, i) => (c ? [i] : []));
  if (rows.length === 0) return tf.clone(x);
  const xRows = rowsOf(x, rows);
  const adv = attack(rows, xRows);
  const out = replaceRows(x, rows, adv);
  tf.dispose([xRows, adv]);
  return out;
}

const predictions = (model: Classifier, x: tf.Tensor4D): Int32Array => tf.tidy(() => tf.argMax(model(x), 1).dataSync() as Int32Array);

/** Runs spec's attack on a batch: images [n,H,W,3] in [0,1], labels, sample ids (keys of every random draw). */
export function attackImages(model: Classifier, x: tf.Tensor4D, labels: readonly number[], sampleIds: readonly number[], spec: AttackSpec, onStage?: (name: string, robust: number) => void): AttackOutcome {
  const startKeys = evalStartKeys(spec.seed, sampleIds);
  const classes = tf.tidy(() => model(tf.slice(x, [0, 0, 0, 0], [1, -1, -1, -1])).shape[1]);
  const correctOf = (xx: tf.Tensor4D) => {
    const p = predictions(model, xx);
    return labels.map((y, i) => p[i] === y);
  };
  if (spec.attack === 'autoattack') return autoAttack(model, x, labels, componentOptions(spec, startKeys), onStage);
  const clean = correctOf(x);
  const loss = crossEntropyLoss(model, labels, classes);
  const { epsilon, restarts } = spec;
  let xAdv: tf.Tensor4D;
  if (spec.attack === 'none' || epsilon === 0) xAdv = tf.clone(x);
  else if (spec.attack === 'fgsm') xAdv = fgsm(loss, x, epsilon);
  else if (spec.attack === 'pgd') xAdv = pgd(loss, x, { epsilon, steps: spec.steps, stepSize: spec.stepSize, randomStart: spec.randomStart, restarts, startKeys });
  else xAdv = onCleanCorrect(x, clean, (rows, xRows) => runComponent(spec.attack as AutoAttackComponent, model, xRows, rows.map((i) => labels[i]), componentOptions(spec, rows.map((i) => startKeys[i]))));
  const robustAfter: Record<string, readonly boolean[]> = { clean };
  if (spec.attack !== 'none') robustAfter[spec.attack] = correctOf(xAdv).map((c, i) => c && clean[i]);
  return { xAdv, robustAfter };
}

export interface BatchOutcome {
  /** correct at the clean point and after the attack (for AutoAttack: after all its components) */
  readonly correct: number;
  readonly lossSum: number;
  /** correctly classified images at the clean point ('clean') and after each reported attack */
  readonly perAttack: Readonly<Record<string, number>>;
}

/** Class text features through the (adapted) text tower, no dropout: [C, P]. */
export function classFeatures(model: ClipModel, prompts: readonly (readonly number[])[], adapters: Adapters | null): tf.Tensor2D {
  return tf.tidy(() => model.encodeTexts(prompts, adapters));
}

/** CLIP as a classifier in pixel space over fixed class features */
export const clipClassifier =
  (model: ClipModel, adapters: Adapters | null, textFeatures: tf.Tensor2D): Classifier =>
  (x) =>
    model.logits(model.encodeImages(x, adapters), textFeatures);

/** Evaluates a classifier on one batch under spec's attack. */
export function evaluateImages(model: Classifier, images: tf.Tensor4D, labels: readonly number[], sampleIds: readonly number[], spec: AttackSpec, onStage?: (name: string, robust: number) => void): BatchOutcome {
  return hostTidy(() => {
    const { xAdv, robustAfter } = attackImages(model, images, labels, sampleIds, spec, onStage);
    const logits = model(xAdv);
    // robust: correct at the clean point and at every point an attack tried (RobustBench's count)
    const stages = ['clean', ...reportedAttacks(spec.attack)];
    const correct = robustAfter[stages[stages.length - 1]].filter(Boolean).length;
    const lossSum = tf.sum(crossEntropyPerSample(logits, oneHotLabels(labels, logits.shape[1]))).dataSync()[0];
    const perAttack = Object.fromEntries(Object.entries(robustAfter).map(([name, robust]) => [name, robust.filter(Boolean).length]));
    return { correct, lossSum, perAttack };
  });
}

/** Evaluates one batch of CLIP (with adapters or zero-shot): images [n,H,W,3] in [0,1], labels, sample ids. */
export function evaluateBatch(
  model: ClipModel,
  adapters: Adapters | null,
  textFeatures: tf.Tensor2D,
  images: tf.Tensor4D,
  labels: readonly number[],
  sampleIds: readonly number[],
  spec: AttackSpec,
  onStage?: (name: string, robust: number) => void,
): BatchOutcome {
  return evaluateImages(clipClassifier(model, adapters, textFeatures), images, labels, sampleIds, spec, onStage);
}
