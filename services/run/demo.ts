/**
 * The demo experiment's parts that are not evaluation (which `advclip
 * demo` runs with cli/eval.ts): its tasks, the training of one method as a
 * RunSpec (through a local cluster, or in this process), and its report —
 * the table, demo.json, demo.md and the PNG plots.
 */
import { mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DEFAULT_DEADLINE } from '../coordinator/remote-executor.ts';
import type { BackendChoice } from '../core/backend.ts';
import { invalidArgument } from '../core/errors.ts';
import { attackSpec, type AttackSpec } from '../core/evaluate.ts';
import type { LoraWeights } from '../core/lora.ts';
import type { StepReport } from '../core/trainer.ts';
import { loadAdapter } from '../io/peft.ts';
import { writeChartPng } from '../io/plot.ts';
import { HEARTBEAT_INTERVAL_MS } from '../protocol/grpc-options.ts';
import type { Logger } from '../protocol/log.ts';
import { trainOnLocalCluster } from './local-cluster.ts';
import { startBackend } from './backend.ts';
import { evalSet, evaluate, evenSubset, type EvalSet } from './evaluate.ts';
import { prepareData, prepareRun, type DataSetup } from './prepare.ts';
import { parseRunSpec, type RunSpec } from './spec.ts';
import { trainInProcess } from './steps.ts';

export const Methods = ['zero_shot', 'clip_lora', 'advclip_lora'] as const;
export type MethodKey = (typeof Methods)[number];
export const methodLabel: Record<MethodKey, string> = { zero_shot: 'zero-shot', clip_lora: 'CLIP-LoRA', advclip_lora: 'AdvCLIP-LoRA' };
export const CURVE_EPSILONS = [0, 1, 2, 4, 8] as const; // ×1/255

export interface Accuracies {
  clean: number;
  fgsm: number;
  pgd: number;
}

export interface TaskResult {
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

export interface Trained {
  readonly lora: LoraWeights;
  readonly history: StepReport[];
  readonly seconds: number;
}

/** Trains one method through the local cluster (or in this process with 0 workers). */
export async function trainMethod(run: RunSpec, out: string, workers: number, metricsPort: number, data: DataSetup, backend: BackendChoice, log: Logger): Promise<Trained> {
  if (workers === 0) {
    const setup = await prepareRun(run, backend, log);
    const trained = await trainInProcess(setup, log, false);
    setup.model.dispose();
    return { lora: trained.state.lora, history: trained.history, seconds: trained.seconds };
  }
  const cluster = { run, out, json: false, backend: backend.name, workers, insecure: false, metrics: { port: metricsPort }, deadline: DEFAULT_DEADLINE, heartbeatIntervalMs: HEARTBEAT_INTERVAL_MS };
  const summary = await trainOnLocalCluster(cluster, log);
  const trainJson = JSON.parse(await readFile(join(summary.out, 'train.json'), 'utf8')) as { history: { loss: number; clean_loss: number | null }[] };
  return {
    lora: await loadAdapter(summary.out, data.dir.config),
    history: trainJson.history.map((h) => ({ loss: h.loss, cleanLoss: h.clean_loss ?? NaN }) as StepReport),
    seconds: summary.seconds,
  };
}

export async function discoverTasks(root: string, only: string | undefined): Promise<string[]> {
  const names = only ? only.split(',').map((s) => s.trim()) : (await readdir(root)).sort();
  const tasks = [];
  for (const n of names) if ((await stat(join(root, n, 'train')).catch(() => null))?.isDirectory()) tasks.push(n);
  if (tasks.length === 0) throw invalidArgument(`${root}: no task folders with a train/ split`);
  return tasks;
}


const pct = (x: number) => (x * 100).toFixed(1).padStart(5);

export function table(results: Record<string, TaskResult>, epsilon: number, pgdSteps: number, setup: string): string {
  const lines = [`accuracy (%) at ε = ${(epsilon * 255).toFixed(0)}/255; PGD-${pgdSteps}, step ε/4, random start`, setup];
  for (const [task, r] of Object.entries(results)) {
    lines.push('', `${task} (${r.classes} classes, chance ${pct(r.chance).trim()}%, ${r.test_images} test images)`, `  ${'method'.padEnd(14)} ${'clean'.padStart(6)} ${'FGSM'.padStart(6)} ${`PGD-${pgdSteps}`.padStart(6)}`);
    for (const m of Methods) lines.push(`  ${methodLabel[m].padEnd(14)} ${pct(r[m].clean).padStart(6)} ${pct(r[m].fgsm).padStart(6)} ${pct(r[m].pgd).padStart(6)}`);
  }
  return lines.join('\n') + '\n';
}

export async function writeReport(out: string, report: Record<string, unknown>, results: Record<string, TaskResult>, epsilon: number, pgdSteps: number, setup: string): Promise<void> {
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

/** What `advclip demo` runs (its flags, typed). */
export interface DemoOptions {
  readonly model: string;
  /** folder of ImageFolder tasks */
  readonly dataRoot: string;
  /** comma-separated task folders; undefined: every task */
  readonly tasks?: string;
  readonly shots: number;
  readonly seed: number;
  readonly iters: number;
  readonly lr: number;
  readonly augment: string;
  /** ε of the evaluation attacks */
  readonly epsilon: number;
  /** ε of AdvCLIP-LoRA training; undefined: epsilon */
  readonly trainEpsilon?: number;
  readonly tau: number;
  readonly perturbation: string;
  readonly pgdSteps: number;
  readonly curveLimit: number;
  /** test images per task for the table; undefined: all */
  readonly evalLimit?: number;
  readonly out: string;
  /** worker processes of the local cluster (0: train in this process) */
  readonly workers: number;
  readonly metricsPort: number;
  readonly backend?: string;
}

export interface DemoOutcome {
  readonly report: Record<string, unknown>;
  readonly results: Record<string, TaskResult>;
  /** the run's settings in one line, the table's subtitle */
  readonly setup: string;
  readonly seconds: number;
}

/** The demo's experiment: for every task, zero-shot, CLIP-LoRA and AdvCLIP-LoRA trained and evaluated; demo.json and demo.md written. */
export async function runDemoExperiment(o: DemoOptions, log: Logger): Promise<DemoOutcome> {
  const started = performance.now();
  const epsilon = o.epsilon;
  const trainEpsilon = o.trainEpsilon ?? epsilon;
  const backend = await startBackend(o.backend, log);
  const tasks = await discoverTasks(o.dataRoot, o.tasks);
  log.info(`demo: ${tasks.length} task(s), ${o.shots}-shot, seed ${o.seed}, ${o.iters} iterations per method at lr ${o.lr} (500 × shots = ${500 * (o.shots)} at 2e-4 would not fit the time budget)`, {
    epsilon: `${(epsilon * 255).toFixed(2)}/255`,
    train_epsilon: `${(trainEpsilon * 255).toFixed(2)}/255`,
    perturbation: o.perturbation,
    augment: o.augment,
    workers: o.workers,
  });
  const attack = (kind: AttackSpec['attack'], eps: number): AttackSpec => attackSpec({ attack: kind, epsilon: eps, steps: o.pgdSteps, seed: o.seed });
  const results: Record<string, TaskResult> = {};

  for (const task of tasks) {
    const dataDir = join(o.dataRoot, task);
    const runOf = (method: string): RunSpec =>
      parseRunSpec({
        model: o.model,
        data: { root: dataDir },
        shots: o.shots,
        train: { seed: o.seed, method, iters: o.iters, lr: o.lr, augment: o.augment, epsilon: trainEpsilon, tau: o.tau, perturbation: o.perturbation },
      });
    const data: DataSetup = await prepareData(runOf('clip-lora'), backend, log);
    // decoded once, evaluated many times (3 methods × clean, FGSM, PGD and the curve's ε)
    const test = await evalSet(evenSubset(data.dataset.test, o.evalLimit), data.dir);
    const curveSet = await evalSet(evenSubset(data.dataset.test, o.curveLimit), data.dir);
    const evalAll = async (lora: LoraWeights | null, name: MethodKey): Promise<[Accuracies, [number, number][]]> => {
      const run = (images: EvalSet, a: AttackSpec) => evaluate(data.model, data.prompts, images, lora, a, 50, log, `${task} ${methodLabel[name]} ${a.attack}`);
      const acc = { clean: (await run(test, attack('none', 0))).accuracy, fgsm: (await run(test, attack('fgsm', epsilon))).accuracy, pgd: (await run(test, attack('pgd', epsilon))).accuracy };
      const curve: [number, number][] = [];
      for (const e of CURVE_EPSILONS) curve.push([e, (await run(curveSet, attack(e === 0 ? 'none' : 'pgd', e / 255))).accuracy]);
      return [acc, curve];
    };
    const trained: Partial<Record<'clip_lora' | 'advclip_lora', Trained>> = {};
    for (const [key, method] of [['clip_lora', 'clip-lora'], ['advclip_lora', 'advclip-lora']] as const) {
      trained[key] = await trainMethod(runOf(method), join(o.out, 'adapters', task, method), o.workers, o.metricsPort, data, backend, log);
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
    shots: o.shots,
    seed: o.seed,
    iters: o.iters,
    lr: o.lr,
    augment: o.augment,
    workers: o.workers,
    perturbation: o.perturbation,
    pgd_steps: o.pgdSteps,
    backend: backend.name,
    seconds,
    tasks: Object.fromEntries(Object.entries(results).map(([t, r]) => [t, { chance: r.chance, zero_shot: r.zero_shot, clip_lora: r.clip_lora, advclip_lora: r.advclip_lora }])),
    details: results,
  };
  const setup = `${o.shots}-shot, seed ${o.seed}, ${o.iters} steps at lr ${o.lr}; AdvCLIP-LoRA: ${o.perturbation} δ, τ = ${o.tau}, ε_train = ${(trainEpsilon * 255).toFixed(0)}/255`;
  await writeReport(o.out, report, results, epsilon, o.pgdSteps, setup);
  return { report, results, setup, seconds };
}
