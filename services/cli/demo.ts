/**
 * `advclip demo` (npm start): the paper's experiment on the shipped model and
 * tasks. For every task: zero-shot, CLIP-LoRA and AdvCLIP-LoRA (16-shot,
 * seed 1), each evaluated clean, under FGSM and under PGD-10 at ε; robust
 * accuracy against ε for a curve; a table on stdout, results/demo.json,
 * results/demo.md with PNG plots.
 */
import { mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { attackSpec, type AttackSpec } from '../core/evaluate.ts';
import { invalidArgument } from '../core/errors.ts';
import type { LoraWeights } from '../core/lora.ts';
import type { StepReport } from '../core/trainer.ts';
import { parseFlags, type CommandSpec, type FlagValues } from './args.ts';
import { evalSet, evaluate, evenSubset, type EvalSet } from './eval.ts';
import type { Logger } from './log.ts';
import { writeChartPng } from './plot.ts';
import { prepareData, prepareTraining, type DataSetup } from './run-setup.ts';
import { startBackend } from './runtime.ts';
import { trainSpecFrom } from './train-flags.ts';
import { trainCommand, trainInProcess } from './train.ts';
import { clusterCommand, trainOnLocalCluster } from './cluster.ts';
import { loadAdapter } from '../io/peft.ts';
import type { BackendChoice } from '../core/backend.ts';

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

const Methods = ['zero_shot', 'clip_lora', 'advclip_lora'] as const;
type MethodKey = (typeof Methods)[number];
const methodLabel: Record<MethodKey, string> = { zero_shot: 'zero-shot', clip_lora: 'CLIP-LoRA', advclip_lora: 'AdvCLIP-LoRA' };
const CURVE_EPSILONS = [0, 1, 2, 4, 8] as const; // ×1/255

interface Accuracies {
  clean: number;
  fgsm: number;
  pgd: number;
}

interface TaskResult {
  chance: number;
  classes: number;
  test_images: number;
  zero_shot: Accuracies;
  clip_lora: Accuracies;
  advclip_lora: Accuracies;
  curve: Record<MethodKey, [number, number][]>;
  loss: { clip_lora: number[]; advclip_lora: number[]; advclip_lora_clean: number[] };
  train_seconds: { clip_lora: number; advclip_lora: number };
}

interface Trained {
  readonly lora: LoraWeights;
  readonly history: StepReport[];
  readonly seconds: number;
}

/** Trains one method through the local cluster (or in this process with 0 workers). */
async function trainMethod(args: string[], workers: number, metricsPort: number, data: DataSetup, backend: BackendChoice, log: Logger): Promise<Trained> {
  if (workers === 0) {
    const flags = parseFlags(trainCommand, args);
    const setup = await prepareTraining(flags, trainSpecFrom(flags), backend, log);
    const run = await trainInProcess(setup, log, false);
    setup.model.dispose();
    return { lora: run.state.lora, history: run.history, seconds: run.seconds };
  }
  const flags = parseFlags(clusterCommand, [...args, '--workers', String(workers), '--metrics-port', String(metricsPort), '--backend', backend.name]);
  const summary = await trainOnLocalCluster(flags, log);
  const trainJson = JSON.parse(await readFile(join(summary.out, 'train.json'), 'utf8')) as { history: { loss: number; clean_loss: number | null }[] };
  return {
    lora: await loadAdapter(summary.out, data.dir.config),
    history: trainJson.history.map((h) => ({ loss: h.loss, cleanLoss: h.clean_loss ?? NaN }) as StepReport),
    seconds: summary.seconds,
  };
}

async function discoverTasks(root: string, only: string | undefined): Promise<string[]> {
  const names = only ? only.split(',').map((s) => s.trim()) : (await readdir(root)).sort();
  const tasks = [];
  for (const n of names) if ((await stat(join(root, n, 'train')).catch(() => null))?.isDirectory()) tasks.push(n);
  if (tasks.length === 0) throw invalidArgument(`${root}: no task folders with a train/ split`);
  return tasks;
}

export async function runDemo(flags: FlagValues, _argv: readonly string[], log: Logger): Promise<void> {
  const started = performance.now();
  const epsilon = flags.epsilon as number;
  const trainEpsilon = (flags['train-epsilon'] as number | undefined) ?? epsilon;
  const backend = await startBackend(flags.backend, log);
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
    const trainArgs = (method: string) => [
      '--model', flags.model as string, '--data', dataDir, '--shots', String(flags.shots), '--seed', String(flags.seed),
      '--method', method, '--iters', String(flags.iters), '--lr', String(flags.lr), '--augment', flags.augment as string, '--epsilon', String(trainEpsilon), '--tau', String(flags.tau),
      '--perturbation', flags.perturbation as string, '--out', join(flags.out as string, 'adapters', task, method),
    ];
    const data: DataSetup = await prepareData(parseFlags(trainCommand, trainArgs('clip-lora')), backend, log);
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
      trained[key] = await trainMethod(trainArgs(method), flags.workers as number, flags['metrics-port'] as number, data, backend, log);
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

const pct = (x: number) => (x * 100).toFixed(1).padStart(5);

function table(results: Record<string, TaskResult>, epsilon: number, pgdSteps: number, setup: string): string {
  const lines = [`accuracy (%) at ε = ${(epsilon * 255).toFixed(0)}/255; PGD-${pgdSteps}, step ε/4, random start`, setup];
  for (const [task, r] of Object.entries(results)) {
    lines.push('', `${task} (${r.classes} classes, chance ${pct(r.chance).trim()}%, ${r.test_images} test images)`, `  ${'method'.padEnd(14)} ${'clean'.padStart(6)} ${'FGSM'.padStart(6)} ${`PGD-${pgdSteps}`.padStart(6)}`);
    for (const m of Methods) lines.push(`  ${methodLabel[m].padEnd(14)} ${pct(r[m].clean).padStart(6)} ${pct(r[m].fgsm).padStart(6)} ${pct(r[m].pgd).padStart(6)}`);
  }
  return lines.join('\n') + '\n';
}

async function writeReport(out: string, report: Record<string, unknown>, results: Record<string, TaskResult>, epsilon: number, pgdSteps: number, setup: string): Promise<void> {
  await mkdir(out, { recursive: true });
  await writeFile(join(out, 'demo.json'), JSON.stringify(report, null, 2) + '\n');
  const md = [`# AdvCLIP-LoRA demo`, '', '```', table(results, epsilon, pgdSteps, setup).trimEnd(), '```', ''];
  for (const [task, r] of Object.entries(results)) {
    const curvePng = `${task}-accuracy-vs-epsilon.png`;
    const lossPng = `${task}-training-loss.png`;
    await writeChartPng(
      {
        title: `${task}: PGD-${pgdSteps} accuracy vs ε`,
        xLabel: 'ε (/255)',
        yLabel: 'accuracy',
        yRange: [0, 1],
        xTicks: CURVE_EPSILONS.map((e) => ({ value: e, label: String(e) })),
        series: Methods.map((m) => ({ name: methodLabel[m], points: r.curve[m] })),
      },
      join(out, curvePng),
    );
    await writeChartPng(
      {
        title: `${task}: training loss`,
        xLabel: 'step',
        yLabel: 'mean cross-entropy',
        series: [
          { name: 'CLIP-LoRA', points: r.loss.clip_lora.map((v, i) => [i, v] as [number, number]) },
          { name: 'AdvCLIP (adv)', points: r.loss.advclip_lora.map((v, i) => [i, v] as [number, number]) },
          { name: 'AdvCLIP (clean)', points: r.loss.advclip_lora_clean.map((v, i) => [i, v] as [number, number]) },
        ],
      },
      join(out, lossPng),
    );
    md.push(`## ${task}`, '', `![accuracy vs epsilon](${curvePng})`, '', `![training loss](${lossPng})`, '');
  }
  await writeFile(join(out, 'demo.md'), md.join('\n'));
}
