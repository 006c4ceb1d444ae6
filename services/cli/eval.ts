/**
 * `advclip eval`: clean or robust (ℓ∞ in [0,1] pixels: FGSM, PGD, APGD-CE/T,
 * FAB-T, Square, AutoAttack) accuracy of CLIP, zero-shot or with a PEFT
 * adapter, on a data set split; `--check` runs the gradient-masking checks.
 * Exit status: 0, or 1 on an error or when a --check check fails (the JSON
 * is printed first, with every verdict).
 */
import { failedPrecondition, invalidArgument } from '../core/errors.ts';
import { attackDefaults, Attacks, attackSpec, type AttackSpec } from '../core/evaluate.ts';
import { defaultCheckEpsilon } from '../core/masking-checks.ts';
import { loadAdapter } from '../io/peft.ts';
import type { Logger } from '../protocol/log.ts';
import { startBackend } from '../run/backend.ts';
import { checkMasking, evalSet, evaluate, evenSubset } from '../run/evaluate.ts';
import { prepareData } from '../run/prepare.ts';
import type { CommandSpec, FlagValues } from './args.ts';
import { dataFlags, dataSourceFrom } from './train-flags.ts';

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
