/**
 * `advclip demo` (npm start): the paper's experiment on the shipped model and
 * tasks. For every task: zero-shot, CLIP-LoRA and AdvCLIP-LoRA with the
 * paper's universal δ and with our per-sample δ (16-shot, seed 1), each
 * evaluated clean and under PGD-10 at 1/255 and 4/255 on every test image
 * and under AutoAttack at 4/255 on a class-balanced subset, with 95 %
 * intervals; robust accuracy against ε for a curve; a table on stdout,
 * results/demo.json, results/demo.md with PNG plots.
 */
import { join } from 'node:path';
import type { Logger } from '../protocol/log.ts';
import { parsePerturbations, runDemoExperiment, table, type DemoOptions } from '../run/demo.ts';
import { attackDefaults } from '../core/evaluate.ts';
import type { CommandSpec, FlagValues } from './args.ts';

/** AutoAttack's subset per class, and one task of the two: what lets `npm start` fit 10 minutes on 2 cores (README) */
const AUTOATTACK_PER_CLASS = 2;
const DEMO_TASKS = 'shapes-colours';

export const demoCommand: CommandSpec = {
  name: 'demo',
  summary: 'The paper’s experiment on the shipped model and tasks (npm start)',
  usage: 'advclip demo [--model models/clip-small] [--data-root data] [--iters N] [--epsilon 4/255] [--json]',
  flags: {
    model: { type: 'string', default: 'models/clip-small', arg: 'DIR', help: 'the CLIP to fine-tune' },
    'data-root': { type: 'string', default: 'data', arg: 'DIR', help: 'folder of ImageFolder tasks' },
    tasks: { type: 'string', default: DEMO_TASKS, arg: 'LIST', help: 'task folders to run, comma-separated (colours,shapes-colours: both; AutoAttack on two tasks does not fit 10 minutes)' },
    shots: { type: 'int', default: 16, help: 'training images per class' },
    seed: { type: 'int', default: 1, help: 'seed of the run' },
    iters: { type: 'int', default: 150, help: 'optimiser steps per method (500 × shots does not fit the 10-minute budget on 2 cores)' },
    lr: { type: 'number', default: 1e-2, help: 'LoRA learning rate (higher than the paper’s 2e-4 × 8000 steps, for 150 steps)' },
    augment: { type: 'string', default: 'none', choices: ['crop-flip', 'none'], help: 'training augmentation (RandomResizedCrop down to 8% of a 64-px image loses the object)' },
    epsilon: { type: 'fraction', default: '4/255', help: 'ε of the stronger PGD column and of AutoAttack (and of training unless --train-epsilon)' },
    'low-epsilon': { type: 'fraction', default: '1/255', help: 'ε of the weaker PGD column' },
    'train-epsilon': { type: 'fraction', arg: 'ε', help: 'ε of AdvCLIP-LoRA training (default: --epsilon)' },
    tau: { type: 'int', default: 2, help: 'ascent steps on δ per step' },
    perturbation: {
      type: 'string',
      default: 'universal,per-sample',
      arg: 'LIST',
      help: 'the AdvCLIP-LoRA rows: universal (the paper’s δ, Algorithm 1), per-sample (ours, Madry PGD), or both',
    },
    'pgd-steps': { type: 'int', default: 10, help: 'PGD steps of the evaluation' },
    'autoattack-per-class': { type: 'int', default: AUTOATTACK_PER_CLASS, help: 'AutoAttack’s class-balanced subset: test images per class (0: no AutoAttack column)' },
    'autoattack-iterations': { type: 'int', default: attackDefaults.iterations, help: 'APGD and FAB-T iterations of AutoAttack (standard: 100)' },
    'autoattack-queries': { type: 'int', default: attackDefaults.queries, help: 'Square queries of AutoAttack (standard: 5000)' },
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
  const options: DemoOptions = {
    model: flags.model as string,
    dataRoot: flags['data-root'] as string,
    tasks: flags.tasks as string | undefined,
    shots: flags.shots as number,
    seed: flags.seed as number,
    iters: flags.iters as number,
    lr: flags.lr as number,
    augment: flags.augment as string,
    epsilon: flags.epsilon as number,
    trainEpsilon: flags['train-epsilon'] as number | undefined,
    tau: flags.tau as number,
    lowEpsilon: flags['low-epsilon'] as number,
    perturbations: parsePerturbations(flags.perturbation as string),
    pgdSteps: flags['pgd-steps'] as number,
    autoattackPerClass: flags['autoattack-per-class'] as number,
    autoattackIterations: flags['autoattack-iterations'] as number,
    autoattackQueries: flags['autoattack-queries'] as number,
    curveLimit: flags['curve-limit'] as number,
    evalLimit: flags['eval-limit'] as number | undefined,
    out: flags.out as string,
    workers: flags.workers as number,
    metricsPort: flags['metrics-port'] as number,
    backend: flags.backend as string | undefined,
  };
  const { report, results, tableSetup, seconds } = await runDemoExperiment(options, log);
  process.stdout.write(flags.json ? JSON.stringify(report) + '\n' : table(results, tableSetup));
  log.info(`demo done in ${Math.round(seconds)} s; wrote ${join(options.out, 'demo.json')} and demo.md`);
}
