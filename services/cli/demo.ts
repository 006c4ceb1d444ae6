/**
 * `advclip demo` (npm start): the paper's experiment on the shipped model and
 * tasks. For every task: zero-shot, CLIP-LoRA and AdvCLIP-LoRA (16-shot,
 * seed 1), each evaluated clean, under FGSM and under PGD-10 at ε; robust
 * accuracy against ε for a curve; a table on stdout, results/demo.json,
 * results/demo.md with PNG plots.
 */
import { join } from 'node:path';
import { attackSpec, type AttackSpec } from '../core/evaluate.ts';
import { invalidArgument } from '../core/errors.ts';
import type { LoraWeights } from '../core/lora.ts';
import type { Logger } from '../protocol/log.ts';
import { startBackend } from '../run/backend.ts';
import { discoverTasks, methodLabel, table, trainMethod, writeReport, CURVE_EPSILONS, type Accuracies, type MethodKey, type TaskResult, type Trained } from '../run/demo.ts';
import { prepareData, type DataSetup } from '../run/prepare.ts';
import { parseRunSpec, type RunSpec } from '../run/spec.ts';
import type { CommandSpec, FlagValues } from './args.ts';
import { evalSet, evaluate, evenSubset, type EvalSet } from './eval.ts';

export const demoCommand: CommandSpec = {
  name: 'demo',
  summary: 'The paper’s experiment on the shipped model and tasks (npm start)',
  usage: 'advclip demo [--model models/clip-small] [--data-root data] [--iters N] [--epsilon 4/255] [--json]',
  flags: {
    model: { type: 'string', default: 'models/clip-small', arg: 'DIR', help: 'the CLIP to fine-tune' },
    'data-root': { type: 'string', default: 'data', arg: 'DIR', help: 'folder of ImageFolder tasks' },
    tasks: { type: 'string', arg: 'LIST', help: 'task folders to run (default: every task under --data-root)' },
    shots: { type: 'int', default: 16, help: 'training images per class' },
    seed: { type: 'int', default: 1, help: 'seed of the run' },
    iters: { type: 'int', default: 150, help: 'optimiser steps per method (500 × shots does not fit the 15-minute budget on 2 cores)' },
    lr: { type: 'number', default: 1e-2, help: 'LoRA learning rate (higher than the paper’s 2e-4 × 8000 steps, for 150 steps)' },
    augment: { type: 'string', default: 'none', choices: ['crop-flip', 'none'], help: 'training augmentation (RandomResizedCrop down to 8% of a 64-px image loses the object)' },
    epsilon: { type: 'fraction', default: '4/255', help: 'ε of the evaluation attacks (and of training unless --train-epsilon)' },
    'train-epsilon': { type: 'fraction', arg: 'ε', help: 'ε of AdvCLIP-LoRA training (default: --epsilon)' },
    tau: { type: 'int', default: 2, help: 'ascent steps on δ per step' },
    perturbation: {
      type: 'string',
      default: 'per-sample',
      choices: ['universal', 'per-sample'],
      help: 'AdvCLIP-LoRA perturbation: per-sample δ (Madry) gave +17/+10 PGD points here, the paper’s universal δ +10/+6',
    },
    'pgd-steps': { type: 'int', default: 10, help: 'PGD steps of the evaluation' },
    'curve-limit': { type: 'int', default: 50, help: 'test images per task for the accuracy-vs-ε curve' },
    'eval-limit': { type: 'int', arg: 'N', help: 'test images per task for the table (default: all)' },
    out: { type: 'string', default: 'results', arg: 'DIR', help: 'where demo.json, demo.md and the plots go' },
    workers: { type: 'int', default: 2, help: 'train through a local cluster of N worker processes (0: in this process)' },
    'metrics-port': { type: 'int', default: 9464, help: 'the coordinator’s Prometheus /metrics port while it trains (0: any free port)' },
    backend: { type: 'string', arg: 'NAME', help: 'compute backend (see advclip train --help)' },
    json: { type: 'boolean', help: 'print demo.json on stdout' },
  },
};

export async function runDemo(flags: FlagValues, _argv: readonly string[], log: Logger): Promise<void> {
  const started = performance.now();
  const epsilon = flags.epsilon as number;
  const trainEpsilon = (flags['train-epsilon'] as number | undefined) ?? epsilon;
  const backend = await startBackend(flags.backend as string | undefined, log);
  const tasks = await discoverTasks(flags['data-root'] as string, flags.tasks as string | undefined);
  log.info(`demo: ${tasks.length} task(s), ${flags.shots}-shot, seed ${flags.seed}, ${flags.iters} iterations per method at lr ${flags.lr} (500 × shots = ${500 * (flags.shots as number)} at 2e-4 would not fit the time budget)`, {
    epsilon: `${(epsilon * 255).toFixed(2)}/255`,
    train_epsilon: `${(trainEpsilon * 255).toFixed(2)}/255`,
    perturbation: flags.perturbation,
    augment: flags.augment,
    workers: flags.workers,
  });
  const attack = (kind: AttackSpec['attack'], eps: number): AttackSpec => attackSpec({ attack: kind, epsilon: eps, steps: flags['pgd-steps'] as number, seed: flags.seed as number });
  const results: Record<string, TaskResult> = {};

  for (const task of tasks) {
    const dataDir = join(flags['data-root'] as string, task);
    const runOf = (method: string): RunSpec =>
      parseRunSpec({
        model: flags.model,
        data: { root: dataDir },
        shots: flags.shots,
        train: { seed: flags.seed, method, iters: flags.iters, lr: flags.lr, augment: flags.augment, epsilon: trainEpsilon, tau: flags.tau, perturbation: flags.perturbation },
      });
    const data: DataSetup = await prepareData(runOf('clip-lora'), backend, log);
    // decoded once, evaluated many times (3 methods × clean, FGSM, PGD and the curve's ε)
    const test = await evalSet(evenSubset(data.dataset.test, flags['eval-limit'] as number | undefined), data.dir);
    const curveSet = await evalSet(evenSubset(data.dataset.test, flags['curve-limit'] as number), data.dir);
    const evalAll = async (lora: LoraWeights | null, name: MethodKey): Promise<[Accuracies, [number, number][]]> => {
      const run = (images: EvalSet, a: AttackSpec) => evaluate(data.model, data.prompts, images, lora, a, 50, log, `${task} ${methodLabel[name]} ${a.attack}`);
      const acc = { clean: (await run(test, attack('none', 0))).accuracy, fgsm: (await run(test, attack('fgsm', epsilon))).accuracy, pgd: (await run(test, attack('pgd', epsilon))).accuracy };
      const curve: [number, number][] = [];
      for (const e of CURVE_EPSILONS) curve.push([e, (await run(curveSet, attack(e === 0 ? 'none' : 'pgd', e / 255))).accuracy]);
      return [acc, curve];
    };
    const trained: Partial<Record<'clip_lora' | 'advclip_lora', Trained>> = {};
    for (const [key, method] of [['clip_lora', 'clip-lora'], ['advclip_lora', 'advclip-lora']] as const) {
      trained[key] = await trainMethod(runOf(method), join(flags.out as string, 'adapters', task, method), flags.workers as number, flags['metrics-port'] as number, data, backend, log);
    }
    const [zs, zsCurve] = await evalAll(null, 'zero_shot');
    const [cl, clCurve] = await evalAll(trained.clip_lora!.lora, 'clip_lora');
    const [adv, advCurve] = await evalAll(trained.advclip_lora!.lora, 'advclip_lora');
    data.model.dispose();
    results[task] = {
      chance: 1 / data.dataset.classNames.length,
      classes: data.dataset.classNames.length,
      test_images: test.count,
      zero_shot: zs,
      clip_lora: cl,
      advclip_lora: adv,
      curve: { zero_shot: zsCurve, clip_lora: clCurve, advclip_lora: advCurve },
      loss: {
        clip_lora: trained.clip_lora!.history.map((h) => h.loss),
        advclip_lora: trained.advclip_lora!.history.map((h) => h.loss),
        advclip_lora_clean: trained.advclip_lora!.history.map((h) => h.cleanLoss),
      },
      train_seconds: { clip_lora: trained.clip_lora!.seconds, advclip_lora: trained.advclip_lora!.seconds },
    };
  }

  const seconds = (performance.now() - started) / 1000;
  const report = {
    epsilon,
    train_epsilon: trainEpsilon,
    shots: flags.shots,
    seed: flags.seed,
    iters: flags.iters,
    lr: flags.lr,
    augment: flags.augment,
    workers: flags.workers,
    perturbation: flags.perturbation,
    pgd_steps: flags['pgd-steps'],
    backend: backend.name,
    seconds,
    tasks: Object.fromEntries(Object.entries(results).map(([t, r]) => [t, { chance: r.chance, zero_shot: r.zero_shot, clip_lora: r.clip_lora, advclip_lora: r.advclip_lora }])),
    details: results,
  };
  const setup = `${flags.shots}-shot, seed ${flags.seed}, ${flags.iters} steps at lr ${flags.lr}; AdvCLIP-LoRA: ${flags.perturbation} δ, τ = ${flags.tau}, ε_train = ${(trainEpsilon * 255).toFixed(0)}/255`;
  await writeReport(flags.out as string, report, results, epsilon, flags['pgd-steps'] as number, setup);
  process.stdout.write(flags.json ? JSON.stringify(report) + '\n' : table(results, epsilon, flags['pgd-steps'] as number, setup));
  log.info(`demo done in ${Math.round(seconds)} s; wrote ${join(flags.out as string, 'demo.json')} and demo.md`);
}
