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
import type { LoraWeights } from '../core/lora.ts';
import type { StepReport } from '../core/trainer.ts';
import { loadAdapter } from '../io/peft.ts';
import { writeChartPng } from '../io/plot.ts';
import { HEARTBEAT_INTERVAL_MS } from '../protocol/grpc-options.ts';
import type { Logger } from '../protocol/log.ts';
import { trainOnLocalCluster } from './local-cluster.ts';
import { prepareRun, type DataSetup } from './prepare.ts';
import type { RunSpec } from './spec.ts';
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
