/**
 * The demo experiment: its tasks, the training of each method as a RunSpec
 * (through a local cluster, or in this process), its evaluation (clean and
 * PGD on every test image, AutoAttack on a class-balanced subset, each with
 * a 95 % Wilson interval) and its report — the table, demo.json, demo.md
 * and the PNG plots.
 */
import { mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DEFAULT_DEADLINE } from '../coordinator/remote-executor.ts';
import type { BackendChoice } from '../core/backend.ts';
import { invalidArgument } from '../core/errors.ts';
import { attackDefaults, attackSpec, type AttackSpec } from '../core/evaluate.ts';
import type { LoraWeights } from '../core/lora.ts';
import type { StepReport } from '../core/trainer.ts';
import { Perturbations, type Perturbation } from '../core/train-spec.ts';
import { balancedSubset } from '../io/eval-subset.ts';
import { loadAdapter } from '../io/peft.ts';
import { writeChartPng } from '../io/plot.ts';
import { HEARTBEAT_INTERVAL_MS } from '../protocol/grpc-options.ts';
import type { Logger } from '../protocol/log.ts';
import { trainOnLocalCluster } from './local-cluster.ts';
import { startBackend } from './backend.ts';
import { evalSet, evaluate, evenSubset, type EvalResult, type EvalSet } from './evaluate.ts';
import { prepareData, prepareRun, type DataSetup } from './prepare.ts';
import { parseRunSpec, type RunSpec } from './spec.ts';
import { trainInProcess } from './steps.ts';

/** The demo's methods: no training, CLIP-LoRA, and AdvCLIP-LoRA with the paper's universal δ and with our per-sample δ. */
export const Methods = ['zero_shot', 'clip_lora', 'advclip_lora', 'advclip_lora_per_sample'] as const;
export type MethodKey = (typeof Methods)[number];
export const methodLabel: Record<MethodKey, string> = {
  zero_shot: 'zero-shot',
  clip_lora: 'CLIP-LoRA',
  advclip_lora: 'AdvCLIP-LoRA, universal δ (paper)',
  advclip_lora_per_sample: 'AdvCLIP-LoRA, per-sample δ (ours)',
};
/** the plot legends' narrower names */
const shortLabel: Record<MethodKey, string> = { zero_shot: 'zero-shot', clip_lora: 'CLIP-LoRA', advclip_lora: 'Adv. universal δ', advclip_lora_per_sample: 'Adv. per-sample δ' };
/** what trains each method (zero-shot trains nothing) */
const training: Record<Exclude<MethodKey, 'zero_shot'>, { method: 'clip-lora' | 'advclip-lora'; perturbation: Perturbation }> = {
  clip_lora: { method: 'clip-lora', perturbation: 'universal' },
  advclip_lora: { method: 'advclip-lora', perturbation: 'universal' },
  advclip_lora_per_sample: { method: 'advclip-lora', perturbation: 'per-sample' },
};
export const CURVE_EPSILONS = [0, 1, 2, 4, 8] as const; // ×1/255

/** The methods a demo runs: zero-shot, CLIP-LoRA and the AdvCLIP-LoRA of each perturbation asked for. */
export function demoMethods(perturbations: readonly Perturbation[]): MethodKey[] {
  return Methods.filter((m) => m === 'zero_shot' || m === 'clip_lora' || perturbations.includes(training[m].perturbation));
}

/** "universal,per-sample" → the perturbations, each checked */
export function parsePerturbations(text: string): Perturbation[] {
  const list = text.split(',').map((s) => s.trim()).filter(Boolean);
  for (const p of list) if (!Perturbations.includes(p as Perturbation)) throw invalidArgument(`--perturbation: "${p}" is not one of ${Perturbations.join('|')}`);
  if (list.length === 0) throw invalidArgument('--perturbation: give universal, per-sample or both');
  return [...new Set(list as Perturbation[])];
}

/** Z of a two-sided 95 % interval */
const Z95 = 1.959963984540054;

/** Wilson's score interval, 95 %, of k successes in n trials: [lo, hi] */
export function wilson95(k: number, n: number): [number, number] {
  if (n === 0) return [0, 1];
  const p = k / n;
  const z2 = Z95 * Z95;
  const centre = (p + z2 / (2 * n)) / (1 + z2 / n);
  const half = (Z95 / (1 + z2 / n)) * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n));
  return [Math.max(0, centre - half), Math.min(1, centre + half)];
}

/** An accuracy in the table: images correct out of n, and its 95 % Wilson interval. */
export interface Cell {
  readonly accuracy: number;
  readonly correct: number;
  readonly n: number;
  readonly ci95: [number, number];
}

export const cell = (correct: number, n: number): Cell => ({ accuracy: n ? correct / n : NaN, correct, n, ci95: wilson95(correct, n) });

export interface Accuracies {
  readonly clean: Cell;
  /** PGD at the lower ε (1/255) */
  readonly pgd_low: Cell;
  /** PGD at ε (4/255) */
  readonly pgd: Cell;
  /** AutoAttack at ε on the class-balanced subset; null when the demo skips it */
  readonly autoattack: Cell | null;
  /** AutoAttack's subset: accuracy clean and after each component, in order */
  readonly autoattack_stages: Readonly<Record<string, number>> | null;
}

export interface TaskResult {
  chance: number;
  classes: number;
  test_images: number;
  /** AutoAttack's class-balanced subset: its size and images per class */
  autoattack_images: number;
  autoattack_per_class: number;
  methods: Partial<Record<MethodKey, Accuracies>>;
  curve: Partial<Record<MethodKey, [number, number][]>>;
  curve_images: number;
  loss: Partial<Record<Exclude<MethodKey, 'zero_shot'>, { adversarial: number[]; clean: number[] }>>;
  train_seconds: Partial<Record<Exclude<MethodKey, 'zero_shot'>, number>>;
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


const pct = (x: number) => (x * 100).toFixed(1);
const over255 = (eps: number) => `${+(eps * 255).toFixed(2)}/255`;

/** "75.3 [70.1, 79.9]", or "—" for a column the demo skipped */
const cellText = (c: Cell | null) => (c ? `${pct(c.accuracy).padStart(5)} [${pct(c.ci95[0]).padStart(4)}, ${pct(c.ci95[1]).padStart(4)}]` : '—');

/** How the table's figures were made: its title lines and column heads. */
export interface TableSetup {
  readonly epsilon: number;
  readonly lowEpsilon: number;
  readonly pgdSteps: number;
  readonly autoattack: { readonly iterations: number; readonly targets: number; readonly queries: number };
  /** the run's settings in one line */
  readonly run: string;
}

export function table(results: Record<string, TaskResult>, t: TableSetup): string {
  const aa = t.autoattack;
  const lines = [
    `accuracy (%) [95% Wilson score interval]; an image counts when correct clean and under the attack`,
    `PGD-${t.pgdSteps}: step ε/4, random start, every test image; AutoAttack (standard: APGD-CE, APGD-T, FAB-T, Square; ${aa.iterations} iterations, ${aa.targets} targets, ${aa.queries} queries) on a class-balanced subset`,
    t.run,
  ];
  const heads = ['clean', `PGD-${t.pgdSteps} ${over255(t.lowEpsilon)}`, `PGD-${t.pgdSteps} ${over255(t.epsilon)}`, `AutoAttack ${over255(t.epsilon)}`];
  const width = 20;
  const labelWidth = Math.max(...Methods.map((m) => methodLabel[m].length)) + 2;
  for (const [task, r] of Object.entries(results)) {
    const aaImages = r.autoattack_images ? `AutoAttack on ${r.autoattack_images} (${r.autoattack_per_class} per class)` : 'no AutoAttack';
    const counts = [r.test_images, r.test_images, r.test_images, r.autoattack_images].map((n, i) => (i === 3 && !n ? '' : `n = ${n}`));
    lines.push(
      '',
      `${task} (${r.classes} classes, chance ${pct(r.chance)}%; clean and PGD on all ${r.test_images} test images, ${aaImages})`,
      `  ${'method'.padEnd(labelWidth)}${heads.map((h) => h.padEnd(width)).join('')}`.trimEnd(),
      `  ${''.padEnd(labelWidth)}${counts.map((h) => h.padEnd(width)).join('')}`.trimEnd(),
    );
    for (const m of Methods) {
      const a = r.methods[m];
      if (a) lines.push(`  ${methodLabel[m].padEnd(labelWidth)}${[a.clean, a.pgd_low, a.pgd, a.autoattack].map((c) => cellText(c).padEnd(width)).join('')}`.trimEnd());
    }
  }
  return lines.join('\n') + '\n';
}

export async function writeReport(out: string, report: Record<string, unknown>, results: Record<string, TaskResult>, t: TableSetup): Promise<void> {
  await mkdir(out, { recursive: true });
  await writeFile(join(out, 'demo.json'), JSON.stringify(report, null, 2) + '\n');
  const md = [`# AdvCLIP-LoRA demo`, '', '```', table(results, t).trimEnd(), '```', ''];
  for (const [task, r] of Object.entries(results)) {
    const curvePng = `${task}-accuracy-vs-epsilon.png`;
    const lossPng = `${task}-training-loss.png`;
    const shown = Methods.filter((m) => r.curve[m]);
    await writeChartPng(
      {
        title: `${task}: PGD-${t.pgdSteps} accuracy vs ε, ${r.curve_images} test images`,
        xLabel: 'ε (/255)',
        yLabel: 'accuracy',
        yRange: [0, 1],
        xTicks: CURVE_EPSILONS.map((e) => ({ value: e, label: String(e) })),
        series: shown.map((m) => ({ name: shortLabel[m], points: r.curve[m]! })),
      },
      join(out, curvePng),
    );
    const trainedShown = shown.filter((m): m is Exclude<MethodKey, 'zero_shot'> => m !== 'zero_shot');
    const points = (v: number[]) => v.map((y, i) => [i, y] as [number, number]);
    await writeChartPng(
      {
        title: `${task}: training loss`,
        xLabel: 'step',
        yLabel: 'mean cross-entropy',
        series: trainedShown.flatMap((m) =>
          m === 'clip_lora'
            ? [{ name: shortLabel[m], points: points(r.loss[m]!.clean) }]
            : [
                { name: `${shortLabel[m]}`, points: points(r.loss[m]!.adversarial) },
                { name: `${shortLabel[m]}, clean`, points: points(r.loss[m]!.clean) },
              ],
        ),
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
  /** ε of the strongest PGD column and of AutoAttack */
  readonly epsilon: number;
  /** ε of the weaker PGD column */
  readonly lowEpsilon: number;
  /** ε of AdvCLIP-LoRA training; undefined: epsilon */
  readonly trainEpsilon?: number;
  readonly tau: number;
  /** the AdvCLIP-LoRA variants to train */
  readonly perturbations: readonly Perturbation[];
  readonly pgdSteps: number;
  /** AutoAttack's subset: this many test images of every class (0: no AutoAttack column) */
  readonly autoattackPerClass: number;
  readonly autoattackIterations: number;
  readonly autoattackQueries: number;
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
  readonly tableSetup: TableSetup;
  readonly seconds: number;
}

const EVAL_BATCH = 50;

/** The demo's experiment: for every task, each method trained and evaluated; demo.json and demo.md written. */
export async function runDemoExperiment(o: DemoOptions, log: Logger): Promise<DemoOutcome> {
  const started = performance.now();
  const epsilon = o.epsilon;
  const trainEpsilon = o.trainEpsilon ?? epsilon;
  const methods = demoMethods(o.perturbations);
  if (!Number.isInteger(o.autoattackPerClass) || o.autoattackPerClass < 0) throw invalidArgument(`--autoattack-per-class must be a non-negative integer, got ${o.autoattackPerClass}`);
  const backend = await startBackend(o.backend, log);
  const tasks = await discoverTasks(o.dataRoot, o.tasks);
  log.info(`demo: ${tasks.length} task(s), ${methods.map((m) => methodLabel[m]).join(' / ')}; ${o.shots}-shot, seed ${o.seed}, ${o.iters} iterations per method at lr ${o.lr} (500 × shots = ${500 * o.shots} at 2e-4 would not fit the time budget)`, {
    epsilon: over255(epsilon),
    low_epsilon: over255(o.lowEpsilon),
    train_epsilon: over255(trainEpsilon),
    autoattack_per_class: o.autoattackPerClass,
    augment: o.augment,
    workers: o.workers,
  });
  const aaBudget = { iterations: o.autoattackIterations, targets: attackDefaults.targets, queries: o.autoattackQueries };
  const attack = (kind: AttackSpec['attack'], eps: number): AttackSpec =>
    attackSpec({ attack: kind, epsilon: eps, steps: o.pgdSteps, seed: o.seed, iterations: aaBudget.iterations, queries: aaBudget.queries, targets: aaBudget.targets });
  const results: Record<string, TaskResult> = {};

  for (const task of tasks) {
    const dataDir = join(o.dataRoot, task);
    const runOf = (m: Exclude<MethodKey, 'zero_shot'>): RunSpec =>
      parseRunSpec({
        model: o.model,
        data: { root: dataDir },
        shots: o.shots,
        train: { seed: o.seed, method: training[m].method, iters: o.iters, lr: o.lr, augment: o.augment, epsilon: trainEpsilon, tau: o.tau, perturbation: training[m].perturbation },
      });
    const data: DataSetup = await prepareData(runOf('clip_lora'), backend, log);
    const classes = data.dataset.classNames.length;
    // decoded once, evaluated many times
    const testImages = evenSubset(data.dataset.test, o.evalLimit);
    const test = await evalSet(testImages, data.dir);
    const aaImages = o.autoattackPerClass > 0 ? balancedSubset(testImages, classes, o.autoattackPerClass * classes, o.seed) : [];
    const aaSet = aaImages.length ? await evalSet(aaImages, data.dir) : null;
    const curveSet = await evalSet(evenSubset(data.dataset.test, o.curveLimit), data.dir);
    const evalAll = async (lora: LoraWeights | null, name: MethodKey): Promise<[Accuracies, [number, number][]]> => {
      const run = (images: EvalSet, a: AttackSpec) => evaluate(data.model, data.prompts, images, lora, a, EVAL_BATCH, log, `${task} ${methodLabel[name]} ${a.attack} ${over255(a.epsilon)}`);
      const counted = (r: EvalResult) => cell(Math.round(r.accuracy * r.n), r.n);
      const aa = aaSet ? await run(aaSet, attack('autoattack', epsilon)) : null;
      if (aa) log.info(`${task} ${methodLabel[name]}: AutoAttack ${over255(epsilon)} on ${aa.n} images in ${aa.seconds.toFixed(0)} s`, aa.per_attack);
      const acc: Accuracies = {
        clean: counted(await run(test, attack('none', 0))),
        pgd_low: counted(await run(test, attack('pgd', o.lowEpsilon))),
        pgd: counted(await run(test, attack('pgd', epsilon))),
        autoattack: aa ? counted(aa) : null,
        autoattack_stages: aa ? aa.per_attack : null,
      };
      const curve: [number, number][] = [];
      for (const e of CURVE_EPSILONS) curve.push([e, (await run(curveSet, attack(e === 0 ? 'none' : 'pgd', e / 255))).accuracy]);
      return [acc, curve];
    };
    const trained: Partial<Record<MethodKey, Trained>> = {};
    for (const m of methods) {
      if (m !== 'zero_shot') trained[m] = await trainMethod(runOf(m), join(o.out, 'adapters', task, m.replaceAll('_', '-')), o.workers, o.metricsPort, data, backend, log);
    }
    const result: TaskResult = {
      chance: 1 / classes,
      classes,
      test_images: test.count,
      autoattack_images: aaImages.length,
      autoattack_per_class: o.autoattackPerClass,
      methods: {},
      curve: {},
      curve_images: curveSet.count,
      loss: {},
      train_seconds: {},
    };
    for (const m of methods) {
      const t = trained[m];
      [result.methods[m], result.curve[m]] = await evalAll(t?.lora ?? null, m);
      if (t && m !== 'zero_shot') {
        result.loss[m] = { adversarial: t.history.map((h) => h.loss), clean: t.history.map((h) => (m === 'clip_lora' ? h.loss : h.cleanLoss)) };
        result.train_seconds[m] = t.seconds;
      }
    }
    data.model.dispose();
    results[task] = result;
  }

  const seconds = (performance.now() - started) / 1000;
  const report = {
    epsilon,
    low_epsilon: o.lowEpsilon,
    train_epsilon: trainEpsilon,
    shots: o.shots,
    seed: o.seed,
    iters: o.iters,
    lr: o.lr,
    augment: o.augment,
    workers: o.workers,
    perturbations: o.perturbations,
    tau: o.tau,
    pgd_steps: o.pgdSteps,
    autoattack: { ...aaBudget, per_class: o.autoattackPerClass },
    interval: '95% Wilson score',
    backend: backend.name,
    seconds,
    tasks: Object.fromEntries(Object.entries(results).map(([t, r]) => [t, { chance: r.chance, ...r.methods }])),
    details: results,
  };
  const tableSetup: TableSetup = {
    epsilon,
    lowEpsilon: o.lowEpsilon,
    pgdSteps: o.pgdSteps,
    autoattack: aaBudget,
    run: `${o.shots}-shot, seed ${o.seed}, ${o.iters} steps at lr ${o.lr}; AdvCLIP-LoRA: τ = ${o.tau}, ε_train = ${over255(trainEpsilon)}`,
  };
  await writeReport(o.out, report, results, tableSetup);
  return { report, results, tableSetup, seconds };
}
