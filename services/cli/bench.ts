/**
 * `advclip bench step`: the time of an AdvCLIP-LoRA step on a named
 * architecture with random weights (no files), after one warm-up step —
 * LoRA dropout off and no augmentation, as the PyTorch anchor. With
 * --workers, through a local cluster, and with what the coordinator counted
 * per step on the wire. Measures, never judges: it prints what it saw.
 */
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { ClipModel } from '../core/clip.ts';
import { invalidArgument } from '../core/errors.ts';
import { localExecutor } from '../core/local-executor.ts';
import { initLora, trainableParameterCount } from '../core/lora.ts';
import { ArchNames, archConfig, randomClipWeights } from '../core/presets.ts';
import { readClipConfig } from '../io/hf-config.ts';
import { CONFIG_FILE } from '../io/model-dir.ts';
import { ShardComputer } from '../core/shard.ts';
import type { TrainSpec } from '../core/train-spec.ts';
import { initTrainState, trainStep } from '../core/trainer.ts';
import type { ClipConfig } from '../core/clip-config.ts';
import type { StepCosts } from '../coordinator/coordinator.ts';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { DEFAULT_DEADLINE } from '../coordinator/remote-executor.ts';
import { HEARTBEAT_INTERVAL_MS } from '../protocol/grpc-options.ts';
import type { Logger } from '../protocol/log.ts';
import { explicitTransposeFor, startBackend } from '../run/backend.ts';
import { trainOnLocalCluster } from '../run/local-cluster.ts';
import { parseRunSpec } from '../run/spec.ts';
import { benchInputs, benchSpec, writeSyntheticRun } from '../run/synthetic-run.ts';
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
    workers: { type: 'int', arg: 'N', help: 'run through N local worker processes (default: in this process)' },
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
  if (flags.workers !== undefined) return benchCluster(flags, log);
  const backend = await startBackend(flags.backend as string | undefined, log);
  const config = await benchConfig(flags);
  const spec = benchSpecFrom(flags);
  const model = ClipModel.fromWeights(config, randomClipWeights(config, 1), { explicitTranspose: explicitTransposeFor(backend) });
  const { prompts, source } = benchInputs(config, spec.batchSize, flags.prompts as number);
  const executor = localExecutor(new ShardComputer(model, spec, prompts, source));
  const lora = initLora(config, spec.lora, spec.seed);
  const state = initTrainState(spec, lora);
  const times: number[] = [];
  for (let i = 0; i <= (flags.steps as number); i++) {
    const t0 = performance.now();
    await trainStep(state, spec, spec.batchSize, executor.execute);
    const seconds = (performance.now() - t0) / 1000;
    if (i > 0) times.push(seconds);
    log.info(i === 0 ? 'warm-up step' : `step ${i}`, { seconds: Number(seconds.toFixed(3)), numTensors: tf.memory().numTensors });
  }
  executor.dispose();
  model.dispose();
  report(flags, spec, times, backend.name, 0, log, { trainable_parameters: trainableParameterCount(lora.sites, spec.lora.rank) });
}

/** The step benchmark's JSON (the public contract: seconds_per_step, backend, workers). */
function report(flags: FlagValues, spec: TrainSpec, times: readonly number[], backend: string, workers: number, log: Logger, extra: Record<string, unknown> = {}): void {
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

/**
 * Means over the measured steps of what the coordinator counted: protobuf
 * bytes of the rounds' Task messages out and TaskResult/TaskError messages
 * back (δ travels inline in each task, gradients in each result), and the
 * rounds' time outside the slowest worker's compute (advclip_step_seconds
 * {phase="network"}). Adapter versions travel apart (NATS or GetAdapter):
 * their size is given, once per version and worker.
 */
function networkFigures(costs: readonly StepCosts[]): Record<string, number> {
  const mean = (of: (c: StepCosts) => number) => costs.reduce((sum, c) => sum + of(c), 0) / costs.length;
  return {
    network_bytes_per_step: mean((c) => c.sentBytes + c.receivedBytes),
    network_bytes_sent_per_step: mean((c) => c.sentBytes),
    network_bytes_received_per_step: mean((c) => c.receivedBytes),
    network_seconds_per_step: mean((c) => c.networkMs) / 1000,
    compute_seconds_per_step: mean((c) => c.computeMs) / 1000,
    adapter_bytes_per_version: mean((c) => c.adapterBytes),
  };
}

/** bench step --workers N: the same step through a local cluster of N worker processes (mTLS, loopback NATS). */
async function benchCluster(flags: FlagValues, log: Logger): Promise<void> {
  const workers = flags.workers as number;
  if (!Number.isInteger(workers) || workers < 1) throw invalidArgument(`--workers must be ≥ 1, got ${workers}`);
  const config = await benchConfig(flags);
  const spec = benchSpecFrom(flags);
  const dir = await mkdtemp(join(tmpdir(), 'advclip-bench-'));
  try {
    log.info('writing a synthetic model and data set', { arch: flags.arch, dir });
    const run = await writeSyntheticRun(dir, config, spec.batchSize, flags.prompts as number);
    // the step benchmarked in this process, on the synthetic files
    const runSpec = parseRunSpec({ model: run.model, data: { root: run.data }, shots: run.shots, train: spec });
    const cluster = {
      run: runSpec,
      out: join(dir, 'out'),
      json: false,
      backend: flags.backend as string | undefined,
      workers,
      insecure: false,
      metrics: { port: 0 },
      deadline: DEFAULT_DEADLINE,
      heartbeatIntervalMs: HEARTBEAT_INTERVAL_MS,
    };
    const costs: StepCosts[] = [];
    const summary = await trainOnLocalCluster(cluster, log, {
      onStep: (_report, _state, coordinator) => void costs.push(coordinator.lastStepCosts!),
    });
    const trained = JSON.parse(await readFile(join(summary.out, 'train.json'), 'utf8')) as { worker_backends?: string[]; history: { seconds: number }[] };
    const times = trained.history.slice(1).map((h) => h.seconds);
    // what the workers computed on (the coordinator computes nothing)
    const backend = trained.worker_backends?.join('+') || 'unknown';
    report(flags, spec, times, backend, workers, log, networkFigures(costs.slice(1)));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
