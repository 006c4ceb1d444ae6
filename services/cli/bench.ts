/**
 * `advclip bench step`: the time of an AdvCLIP-LoRA step on a named
 * architecture with random weights (no files), after one warm-up step —
 * LoRA dropout off and no augmentation, as the PyTorch anchor. With
 * --workers, through a local cluster, and with what the coordinator counted
 * per step on the wire. Measures, never judges: it prints what it saw.
 */
import { join } from 'node:path';
import type { ClipConfig } from '../core/clip-config.ts';
import { invalidArgument } from '../core/errors.ts';
import { ArchNames, archConfig } from '../core/presets.ts';
import type { TrainSpec } from '../core/train-spec.ts';
import { readClipConfig } from '../io/hf-config.ts';
import { CONFIG_FILE } from '../io/model-dir.ts';
import type { Logger } from '../protocol/log.ts';
import { startBackend } from '../run/backend.ts';
import { timeStepsInProcess, timeStepsOnCluster, type TimedSteps } from '../run/bench-step.ts';
import { benchSpec } from '../run/synthetic-run.ts';
import type { CommandSpec, FlagValues } from './args.ts';

export const benchCommand: CommandSpec = {
  name: 'bench',
  summary: 'Benchmarks that print what they measure (bench step: one AdvCLIP-LoRA step)',
  usage: 'advclip bench step --arch vit-b-32|--model DIR --batch 32 --tau 2 --steps 2 [--workers N] --json',
  subcommands: ['step'],
  flags: {
    arch: { type: 'string', default: 'vit-b-32', choices: ArchNames, help: 'architecture, random weights' },
    model: { type: 'string', arg: 'DIR', help: "a model directory's architecture (its config.json), random weights; instead of --arch" },
    batch: { type: 'int', default: 32, help: 'minibatch size' },
    tau: { type: 'int', default: 2, help: 'ascent steps on δ' },
    steps: { type: 'int', default: 2, help: 'measured steps (after one warm-up step)' },
    prompts: { type: 'int', default: 10, help: 'class prompts, each as long as the text tower takes' },
    'chunk-size': { type: 'int', default: 8, help: 'samples per chunk' },
    workers: { type: 'int', arg: 'N', help: 'run through a local cluster of N workers (replicas of one process per core when N exceeds the cores; default: in this process)' },
    backend: { type: 'string', arg: 'NAME', help: 'compute backend' },
    json: { type: 'boolean', help: 'print one JSON object on stdout' },
  },
};

/** the architecture of --model's config.json, or of --arch */
const benchConfig = async (flags: FlagValues): Promise<ClipConfig> =>
  flags.model ? readClipConfig(join(flags.model as string, CONFIG_FILE)) : archConfig(flags.arch as string);

const benchSpecFrom = (flags: FlagValues): TrainSpec => benchSpec({ tau: flags.tau as number, steps: flags.steps as number, batch: flags.batch as number, chunkSize: flags['chunk-size'] as number });

export async function runBench(flags: FlagValues, argv: readonly string[], log: Logger): Promise<void> {
  const sub = argv.find((a) => !a.startsWith('-'));
  if (sub !== 'step') throw invalidArgument(`advclip bench: unknown benchmark "${sub ?? ''}" (available: step)`);
  const config = await benchConfig(flags);
  const spec = benchSpecFrom(flags);
  if (flags.workers !== undefined) {
    const workers = flags.workers as number;
    return report(flags, spec, await timeStepsOnCluster(config, spec, flags.prompts as number, workers, flags.backend as string | undefined, log), workers, log);
  }
  const backend = await startBackend(flags.backend as string | undefined, log);
  const timed = await timeStepsInProcess(config, spec, flags.prompts as number, backend, log);
  report(flags, spec, timed, 0, log);
}

/** The step benchmark's JSON (the public contract: seconds_per_step, backend, workers). */
function report(flags: FlagValues, spec: TrainSpec, { times, backend, extra }: TimedSteps, workers: number, log: Logger): void {
  const result = {
    benchmark: 'step',
    arch: flags.model ? `model:${flags.model}` : flags.arch,
    batch: spec.batchSize,
    tau: spec.tau,
    steps: times.length,
    seconds_per_step: times.reduce((a, b) => a + b, 0) / times.length,
    step_seconds: times,
    backend,
    workers,
    ...extra,
  };
  if (flags.json) process.stdout.write(JSON.stringify(result) + '\n');
  else log.info(`${result.seconds_per_step.toFixed(3)} s per step`, { arch: result.arch, backend, workers });
}

