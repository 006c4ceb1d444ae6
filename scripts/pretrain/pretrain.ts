/**
 * Pretrains the shipped small CLIP on the synthetic corpus and writes it as a
 * Hugging Face model directory with its tokenizer and model card:
 *   npx tsx scripts/pretrain/pretrain.ts [--out models/clip-small] [--steps N] [--batch B] [--seed S] [--minutes M]
 * Progress: one JSON line per event on stderr.
 */
import { readdirSync, statSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { initBackend, parseBackendName, type BackendName } from '../../services/core/backend.ts';
import { ClipModel } from '../../services/core/clip.ts';
import { DEFAULT_PREPROCESS } from '../../services/io/hf-config.ts';
import { loadClipModelDir, writeClipModelDir } from '../../services/io/model-dir.ts';
import { loadDataset } from '../../services/io/datasets.ts';
import type { WritableDtype } from '../../services/io/safetensors.ts';
import { writeTokenizer } from '../synth/make-tokenizer.ts';
import { SMALL_ARCH } from './config.ts';
import { modelCard, type ModelCardFacts } from './model-card.ts';
import { runPretraining, type RunOptions, type RunResult } from './run.ts';
import { DEFAULT_TEMPLATE, zeroShotAccuracy } from './zero-shot.ts';

export interface PretrainOptions extends RunOptions {
  readonly out: string;
  readonly dataRoot: string;
  readonly backend: BackendName;
  readonly dtype: WritableDtype;
}

export const DEFAULT_PRETRAIN_OPTIONS: PretrainOptions = Object.freeze({
  out: 'models/clip-small',
  dataRoot: 'data',
  backend: 'wasm',
  dtype: 'F16',
  steps: 1000,
  batch: 64,
  seed: 0,
  minutes: null,
  stopAfter: null,
  lr: 1e-3,
  warmup: 50,
  lrFloor: 0.02,
  weightDecay: 0.1,
  evalEvery: 250,
  logEvery: 10,
  tasks: [],
  template: DEFAULT_TEMPLATE,
  arch: SMALL_ARCH,
  tokenizerCaptions: 20000,
});

const HELP = `Pretrains a small CLIP on the synthetic captioned shapes (scripts/synth) and writes models/<name>/.

  npx tsx scripts/pretrain/pretrain.ts [options]

  --out DIR          model directory (default ${DEFAULT_PRETRAIN_OPTIONS.out})
  --steps N          optimiser steps (default ${DEFAULT_PRETRAIN_OPTIONS.steps})
  --batch B          image–caption pairs per step (default ${DEFAULT_PRETRAIN_OPTIONS.batch})
  --seed S           init and data seed (default ${DEFAULT_PRETRAIN_OPTIONS.seed})
  --minutes M        stop early after M minutes of wall clock (the card then gives --stop-after to reproduce it; default none)
  --stop-after N     end after N steps of the --steps schedule
  --lr X             peak learning rate (default ${DEFAULT_PRETRAIN_OPTIONS.lr}), --warmup N steps (default ${DEFAULT_PRETRAIN_OPTIONS.warmup})
  --eval-every N     zero-shot evaluation on <data>/*/test every N steps (default ${DEFAULT_PRETRAIN_OPTIONS.evalEvery}; 0 = at the end only)
  --data DIR         few-shot tasks for zero-shot evaluation (default ${DEFAULT_PRETRAIN_OPTIONS.dataRoot})
  --backend NAME     tfjs backend (default ${DEFAULT_PRETRAIN_OPTIONS.backend})
  --help`;

function parseNumber(flag: string, value: string, integer: boolean, min: number): number {
  const n = Number(value);
  if (!Number.isFinite(n) || (integer && !Number.isInteger(n)) || n < min) {
    throw new Error(`pretrain: --${flag} must be ${integer ? 'an integer' : 'a number'} ≥ ${min}, got "${value}"`);
  }
  return n;
}

export function pretrainOptionsFromArgs(args: readonly string[]): PretrainOptions | 'help' {
  const { values } = parseArgs({
    args: [...args],
    options: {
      out: { type: 'string' }, steps: { type: 'string' }, batch: { type: 'string' }, seed: { type: 'string' },
      minutes: { type: 'string' }, 'stop-after': { type: 'string' }, lr: { type: 'string' }, warmup: { type: 'string' }, 'eval-every': { type: 'string' },
      data: { type: 'string' }, backend: { type: 'string' }, help: { type: 'boolean' },
    },
  });
  if (values.help) return 'help';
  const d = DEFAULT_PRETRAIN_OPTIONS;
  const num = (flag: keyof typeof values, fallback: number, integer: boolean, min: number) =>
    values[flag] === undefined ? fallback : parseNumber(flag, values[flag] as string, integer, min);
  const dataRoot = values.data ?? d.dataRoot;
  return Object.freeze({
    ...d,
    out: values.out ?? d.out,
    steps: num('steps', d.steps, true, 1),
    batch: num('batch', d.batch, true, 2),
    seed: num('seed', d.seed, true, 0),
    minutes: values.minutes === undefined ? null : parseNumber('minutes', values.minutes, false, 0),
    stopAfter: values['stop-after'] === undefined ? null : parseNumber('stop-after', values['stop-after'], true, 1),
    lr: num('lr', d.lr, false, 0),
    warmup: num('warmup', d.warmup, true, 0),
    evalEvery: num('eval-every', d.evalEvery, true, 0),
    dataRoot,
    tasks: taskDirectories(dataRoot),
    backend: parseBackendName(values.backend ?? d.backend),
  });
}

/** The ImageFolder tasks under the data root (directories with train/), sorted. */
function taskDirectories(root: string): string[] {
  let names: string[];
  try {
    names = readdirSync(root).sort();
  } catch {
    return [];
  }
  return names.map((n) => join(root, n)).filter((dir) => {
    try {
      return statSync(join(dir, 'train')).isDirectory();
    } catch {
      return false;
    }
  });
}

/** Writes config, F16 weights, tokenizer files and preprocessor config. */
export async function writePretrainedModel(dir: string, run: RunResult, dtype: WritableDtype): Promise<void> {
  const size = run.config.vision.imageSize;
  writeTokenizer(dir, run.bpe, run.config.text.maxPositionEmbeddings);
  await writeClipModelDir(dir, {
    config: run.config,
    weights: run.model.exportWeights(),
    preprocessor: { ...DEFAULT_PREPROCESS, size, cropSize: size },
    dtype,
  });
}

/** The command that reproduces this run exactly (a wall-clock stop becomes --stop-after). */
function commandLine(opts: PretrainOptions, stepsDone: number): string {
  const d = DEFAULT_PRETRAIN_OPTIONS;
  const flags = [`--out ${opts.out}`, `--steps ${opts.steps}`, `--batch ${opts.batch}`, `--seed ${opts.seed}`];
  if (opts.lr !== d.lr) flags.push(`--lr ${opts.lr}`);
  if (opts.warmup !== d.warmup) flags.push(`--warmup ${opts.warmup}`);
  if (opts.evalEvery !== d.evalEvery) flags.push(`--eval-every ${opts.evalEvery}`);
  if (stepsDone < opts.steps) flags.push(`--stop-after ${stepsDone}`);
  return `npx tsx scripts/pretrain/pretrain.ts ${flags.join(' ')}`;
}

async function main(): Promise<void> {
  const opts = pretrainOptionsFromArgs(process.argv.slice(2));
  if (opts === 'help') {
    console.log(HELP);
    return;
  }
  const log = (event: object) => process.stderr.write(`${JSON.stringify(event)}\n`);
  const backend = await initBackend(opts.backend);
  log({ event: 'backend', name: backend.name });
  const run = await runPretraining(opts, log);
  await writePretrainedModel(opts.out, run, opts.dtype);

  // the card reports the files as written: F16 weights, read back by the loader
  const written = await loadClipModelDir(opts.out);
  const shipped = ClipModel.fromWeights(written.config, written.weights, { explicitTranspose: true });
  const tokenizer = await written.loadTokenizer();
  const zeroShot: Record<string, ModelCardFacts['zeroShot'][string]> = {};
  for (const root of opts.tasks) {
    const dataset = await loadDataset({ root });
    const r = await zeroShotAccuracy(shipped, tokenizer, dataset, opts.template);
    zeroShot[dataset.name] = { ...r, chance: 1 / dataset.classNames.length, classNames: dataset.classNames };
    log({ event: 'zero_shot_final', task: dataset.name, accuracy: r.accuracy, per_class: r.perClass });
  }
  const files = readdirSync(opts.out).filter((n) => n !== 'README.md').sort().map((name) => ({ name, bytes: statSync(join(opts.out, name)).size }));
  const card = modelCard({
    name: opts.out.split('/').filter(Boolean).at(-1)!,
    command: commandLine(opts, run.stepsDone),
    seed: opts.seed, steps: opts.steps, stepsDone: run.stepsDone, batch: opts.batch, lr: opts.lr, warmup: opts.warmup,
    weightDecay: opts.weightDecay, seconds: run.seconds,
    machine: `one core of ${cpus()[0]?.model ?? 'an unknown CPU'}, tfjs ${backend.name} backend, Node ${process.version}`,
    parameters: run.model.variables().reduce((n, v) => n + v.size, 0),
    config: run.config, lossCurve: run.lossCurve, zeroShotCurve: run.zeroShotCurve, zeroShot, template: opts.template, files,
  });
  await writeFile(join(opts.out, 'README.md'), card);
  log({ event: 'written', dir: opts.out, seconds: run.seconds, zero_shot: Object.fromEntries(Object.entries(zeroShot).map(([k, r]) => [k, r.accuracy])) });
  shipped.dispose();
  run.model.dispose();
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await main();
