/**
 * `advclip eval`: clean or robust (ℓ∞ in [0,1] pixels: FGSM, PGD, APGD-CE/T,
 * FAB-T, Square, AutoAttack) accuracy of CLIP, zero-shot or with a PEFT
 * adapter, on a data set split; `--check` runs the gradient-masking checks.
 * Exit status: 0, or 1 on an error or when a --check check fails (the JSON
 * is printed first, with every verdict).
 */
import * as tf from '@tensorflow/tfjs';
import type { ClipModel } from '../core/clip.ts';
import { failedPrecondition, invalidArgument } from '../core/errors.ts';
import { attackDefaults, Attacks, attackSpec, classFeatures, clipClassifier, evaluateBatch, reportedAttacks, type AttackSpec } from '../core/evaluate.ts';
import { addCounts, checkBatch, checkPlan, defaultCheckEpsilon, judgeChecks, type CheckCounts, type CheckReport } from '../core/masking-checks.ts';
import { AdapterTensors, type SampleSource } from '../core/shard.ts';
import type { LoraWeights } from '../core/lora.ts';
import type { LabeledImage } from '../io/dataset.ts';
import { loadAdapter } from '../io/peft.ts';
import type { CommandSpec, FlagValues } from './args.ts';
import type { Logger } from '../protocol/log.ts';
import { createProgress } from '../run/progress.ts';
import { inMemorySource, prepareData } from '../run/prepare.ts';
import { startBackend } from '../run/backend.ts';
import { dataFlags, dataSourceFrom } from './train-flags.ts';
import type { ClipModelDir } from '../io/model-dir.ts';

export const evalCommand: CommandSpec = {
  name: 'eval',
  summary: 'Clean or robust accuracy (FGSM, PGD, APGD-CE/T, FAB-T, Square, AutoAttack), zero-shot or with a LoRA adapter; --check tests for gradient masking',
  usage:
    'advclip eval --model DIR [--adapter ADAPTER_DIR] --data DIR [--split test] [--attack none|fgsm|pgd|apgd-ce|apgd-t|fab-t|square|autoattack] [--epsilon 4/255] [--steps 10] [--restarts 1] [--iterations 100] [--queries 5000] [--targets 9] [--check] [--seed S] [--json]',
  flags: {
    ...dataFlags,
    adapter: { type: 'string', arg: 'ADAPTER_DIR', help: 'PEFT LoRA adapter (default: zero-shot)' },
    split: { type: 'string', default: 'test', choices: ['test', 'val', 'train'], help: 'which split to evaluate' },
    attack: {
      type: 'string',
      default: 'none',
      choices: Attacks,
      help: 'ℓ∞ attack on every image, white box with the text tower: autoattack = APGD-CE, APGD-T, FAB-T, Square in turn on the images still robust (RobustBench standard)',
    },
    epsilon: { type: 'fraction', default: '4/255', help: 'ℓ∞ radius in [0,1] pixels (1/255 or a decimal)' },
    steps: { type: 'int', default: attackDefaults.steps, help: 'PGD steps' },
    'step-size': { type: 'fraction', arg: 'α', help: 'PGD step (default ε/4)' },
    restarts: { type: 'int', default: attackDefaults.restarts, help: 'PGD and APGD-CE restarts (the worst case counts)' },
    iterations: { type: 'int', default: attackDefaults.iterations, help: 'APGD-CE, APGD-T and FAB-T iterations (per target for the targeted ones)' },
    queries: { type: 'int', default: attackDefaults.queries, help: 'Square: forward passes per image' },
    targets: { type: 'int', default: attackDefaults.targets, help: 'APGD-T and FAB-T: target classes per image (at most classes − 1)' },
    'no-random-start': { type: 'boolean', help: 'start PGD at x instead of a uniform point in the ε-ball' },
    check: {
      type: 'boolean',
      help: 'sanity checks against gradient masking (PGD at 1× and 5× the steps and with restarts, APGD-CE, APGD-T, Square, PGD at --check-epsilon, input gradients); exit 1 when one fails',
    },
    'check-epsilon': { type: 'fraction', default: String(defaultCheckEpsilon), help: 'the large ε at which --check wants accuracy at most chance' },
    seed: { type: 'int', default: attackDefaults.seed, help: 'seed of the random starts and of Square’s search' },
    'batch-size': { type: 'int', default: 32, help: 'images per forward pass' },
    limit: { type: 'int', arg: 'N', help: 'evaluate only the first N images (deterministic subset: every k-th)' },
    json: { type: 'boolean', help: 'print one JSON object on stdout' },
  },
};

export interface EvalResult {
  readonly accuracy: number;
  readonly n: number;
  readonly attack: string;
  readonly epsilon: number;
  readonly loss: number;
  /** accuracy at the clean point ('clean') and after each reported attack (AutoAttack: after each component, in order) */
  readonly per_attack: Readonly<Record<string, number>>;
  readonly seconds: number;
}

/** every k-th item so a limited evaluation still covers every class */
export function evenSubset<T>(items: readonly T[], limit: number | undefined): readonly T[] {
  if (!limit || limit >= items.length) return items;
  const stride = items.length / limit;
  return Array.from({ length: limit }, (_, i) => items[Math.floor(i * stride)]);
}

/** Images to evaluate on, preprocessed once to the model's size; sample ids are their positions. */
export interface EvalSet {
  readonly source: SampleSource;
  readonly count: number;
}

export async function evalSet(images: readonly LabeledImage[], dir: ClipModelDir): Promise<EvalSet> {
  return { source: await inMemorySource(images, dir), count: images.length };
}

/** Runs `each` on every batch of an evaluation set, with a progress line on stderr. */
async function forBatches(
  images: EvalSet,
  size: number,
  batchSize: number,
  progress: { update: (done: number, extra?: Record<string, string>) => void; stop: () => void },
  each: (x: tf.Tensor4D, labels: readonly number[], ids: readonly number[]) => Record<string, string> | undefined,
): Promise<void> {
  const { source, count } = images;
  for (let start = 0; start < count; start += batchSize) {
    const ids = Array.from({ length: Math.min(batchSize, count - start) }, (_, i) => start + i);
    const batch = await source(ids);
    const x = tf.tensor4d(batch.pixels, [ids.length, size, size, 3]);
    try {
      progress.update(start + ids.length, each(x, batch.labels, ids));
    } finally {
      x.dispose();
    }
  }
  progress.stop();
}

/** Accuracy of a model (with adapters or zero-shot) on an evaluation set, under an attack. */
export async function evaluate(
  model: ClipModel,
  prompts: readonly (readonly number[])[],
  images: EvalSet,
  lora: LoraWeights | null,
  attack: AttackSpec,
  batchSize: number,
  log: Logger,
  progressLabel = `eval ${attack.attack}`,
): Promise<EvalResult> {
  const began = performance.now();
  const adapter = lora ? new AdapterTensors(lora) : null;
  const adapters = adapter ? adapter.adapters(null) : null;
  const text = classFeatures(model, prompts, adapters);
  const progress = createProgress(progressLabel, images.count, log);
  let correct = 0;
  let lossSum = 0;
  let done = 0;
  const perAttack: Record<string, number> = { clean: 0 };
  for (const name of reportedAttacks(attack.attack)) perAttack[name] = 0;
  const onStage = attack.attack === 'autoattack' ? (name: string, robust: number) => log.info(`autoattack: ${name} done on this batch`, { robust }) : undefined;
  await forBatches(images, model.config.vision.imageSize, batchSize, progress, (x, labels, ids) => {
    const outcome = evaluateBatch(model, adapters, text, x, labels, ids, attack, onStage);
    correct += outcome.correct;
    lossSum += outcome.lossSum;
    done += ids.length;
    for (const [name, n] of Object.entries(outcome.perAttack)) perAttack[name] = (perAttack[name] ?? 0) + n;
    return { acc: (correct / done).toFixed(3) };
  });
  text.dispose();
  adapter?.dispose();
  const count = images.count;
  const per_attack = Object.fromEntries(Object.entries(perAttack).map(([k, v]) => [k, v / count]));
  return { accuracy: correct / count, n: count, attack: attack.attack, epsilon: attack.epsilon, loss: lossSum / count, per_attack, seconds: (performance.now() - began) / 1000 };
}

/** The gradient-masking checks of `--check` on an evaluation set. */
export async function checkMasking(
  model: ClipModel,
  prompts: readonly (readonly number[])[],
  images: EvalSet,
  lora: LoraWeights | null,
  attack: AttackSpec,
  checkEpsilon: number,
  batchSize: number,
  log: Logger,
): Promise<CheckReport> {
  const adapter = lora ? new AdapterTensors(lora) : null;
  const adapters = adapter ? adapter.adapters(null) : null;
  const text = classFeatures(model, prompts, adapters);
  const plan = checkPlan(attack, checkEpsilon);
  const progress = createProgress('eval --check', images.count, log);
  let counts: CheckCounts | null = null;
  await forBatches(images, model.config.vision.imageSize, batchSize, progress, (x, labels, ids) => {
    counts = addCounts(counts, checkBatch(clipClassifier(model, adapters, text), x, labels, ids, plan, (name) => log.debug(`check: ${name}`, { images: ids.length })));
    return undefined;
  });
  text.dispose();
  adapter?.dispose();
  return judgeChecks(counts!, prompts.length, checkEpsilon);
}

export function attackSpecFrom(flags: FlagValues): AttackSpec {
  return attackSpec({
    attack: flags.attack as AttackSpec['attack'],
    epsilon: flags.epsilon as number,
    steps: flags.steps as number,
    stepSize: flags['step-size'] as number | undefined,
    randomStart: flags['no-random-start'] !== true,
    restarts: flags.restarts as number,
    iterations: flags.iterations as number,
    queries: flags.queries as number,
    targets: flags.targets as number,
    seed: flags.seed as number,
  });
}

export async function runEval(flags: FlagValues, _argv: readonly string[], log: Logger): Promise<void> {
  const attack = attackSpecFrom(flags);
  const backend = await startBackend(flags.backend as string | undefined, log);
  const data = await prepareData(dataSourceFrom(flags), backend, log);
  const lora = flags.adapter ? await loadAdapter(flags.adapter as string, data.dir.config) : null;
  const split = flags.split as 'test' | 'val' | 'train';
  const all = split === 'val' ? data.dataset.val : data.dataset[split];
  if (!all || all.length === 0) throw invalidArgument(`${data.dataset.root}: the ${split} split is empty`);
  const images = evenSubset(all, flags.limit as number | undefined);
  const set = await evalSet(images, data.dir);
  const batchSize = flags['batch-size'] as number;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw invalidArgument(`--batch-size must be a positive integer, got ${batchSize}`);
  const result = await evaluate(data.model, data.prompts, set, lora, attack, batchSize, log);
  const check = flags.check ? await checkMasking(data.model, data.prompts, set, lora, attack, flags['check-epsilon'] as number, batchSize, log) : null;
  data.model.dispose();
  const out = {
    ...result,
    split,
    adapter: (flags.adapter as string | undefined) ?? null,
    classes: data.dataset.classNames.length,
    chance: 1 / data.dataset.classNames.length,
    ...(check ? { check: { passed: check.passed, checks: check.checks, accuracy: check.accuracy, zero_gradients: check.zeroGradients } } : {}),
  };
  if (flags.json) process.stdout.write(JSON.stringify(out) + '\n');
  else {
    log.info(`accuracy ${(result.accuracy * 100).toFixed(2)}%`, { n: result.n, attack: result.attack, epsilon: result.epsilon, per_attack: result.per_attack, seconds: result.seconds });
    for (const c of check?.checks ?? []) log.info(`check ${c.passed ? 'passed' : 'FAILED'}: ${c.name}: ${c.detail}`);
  }
  if (check && !check.passed) {
    const failed = check.checks.filter((c) => !c.passed).map((c) => c.name);
    throw failedPrecondition(`eval --check: ${failed.length} gradient-masking check(s) failed (${failed.join(', ')}); the robust accuracy above is not trustworthy`);
  }
}
