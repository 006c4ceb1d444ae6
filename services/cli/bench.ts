/**
 * `advclip bench step`: the time of an AdvCLIP-LoRA step on a named
 * architecture with random weights (no files), after one warm-up step —
 * LoRA dropout off and no augmentation, as the PyTorch anchor. Measures,
 * never judges: it prints what it saw.
 */
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { ClipModel } from '../core/clip.ts';
import { invalidArgument } from '../core/errors.ts';
import { localExecutor } from '../core/local-executor.ts';
import { defaultLoraConfig, initLora, trainableParameterCount } from '../core/lora.ts';
import { ArchNames, archConfig, randomClipWeights } from '../core/presets.ts';
import { readClipConfig } from '../io/hf-config.ts';
import { CONFIG_FILE } from '../io/model-dir.ts';
import { RandomStream } from '../core/rng.ts';
import { ShardComputer, type SampleSource } from '../core/shard.ts';
import { validateTrainSpec, type TrainSpec } from '../core/train-spec.ts';
import { initTrainState, trainStep } from '../core/trainer.ts';
import type { ClipConfig } from '../core/clip-config.ts';
import type { CommandSpec, FlagValues } from './args.ts';
import type { Logger } from './log.ts';
import { explicitTransposeFor, startBackend } from './runtime.ts';

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

export function benchSpec(flags: FlagValues): TrainSpec {
  return validateTrainSpec({
    method: 'advclip-lora',
    seed: 1,
    lora: { ...defaultLoraConfig, dropout: 0 },
    epsilon: 1 / 255,
    tau: flags.tau as number,
    perturbation: 'universal',
    deltaStep: 'sign',
    lrDelta: 0.5 / 255,
    loraUpdate: 'jacobi',
    optimizer: 'adamw',
    lr: 2e-4,
    schedule: 'constant',
    weightDecay: 1e-2,
    iters: 1 + (flags.steps as number),
    batchSize: flags.batch as number,
    chunkSize: flags['chunk-size'] as number,
    augment: 'none',
    sync: 'exact',
    cleanLoss: false,
    resetDeltaEachEpoch: false,
  });
}

/** Random images and prompts of full text length, as the anchor's. */
export function benchInputs(config: ClipConfig, batch: number, promptCount: number): { prompts: number[][]; source: SampleSource } {
  const s = config.vision.imageSize;
  const t = config.text;
  const rng = new RandomStream(7);
  const pixels = Float32Array.from({ length: batch * s * s * 3 }, () => rng.uniform());
  const body = t.maxPositionEmbeddings - 2;
  const prompts = Array.from({ length: promptCount }, (_, c) => [t.bosTokenId, ...Array.from({ length: body }, (_, j) => 3 + ((c * body + j) % (t.vocabSize - 6))), t.eosTokenId === 2 ? t.vocabSize - 1 : t.eosTokenId]);
  const per = s * s * 3;
  const source: SampleSource = async (samples) => {
    const out = new Float32Array(samples.length * per);
    samples.forEach((i, k) => out.set(pixels.subarray(i * per, (i + 1) * per), k * per));
    return { pixels: out, labels: samples.map((i) => i % promptCount) };
  };
  return { prompts, source };
}

export async function runBench(flags: FlagValues, argv: readonly string[], log: Logger): Promise<void> {
  const sub = argv.find((a) => !a.startsWith('-'));
  if (sub !== 'step') throw invalidArgument(`advclip bench: unknown benchmark "${sub ?? ''}" (available: step)`);
  if (flags.workers !== undefined) throw invalidArgument('advclip bench step --workers: not available in this build yet; run without --workers for the in-process step');
  const backend = await startBackend(flags.backend, log);
  const config = flags.model ? await readClipConfig(join(flags.model as string, CONFIG_FILE)) : archConfig(flags.arch as string);
  const spec = benchSpec(flags);
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
  const result = {
    benchmark: 'step',
    arch: flags.model ? `model:${flags.model}` : flags.arch,
    batch: spec.batchSize,
    tau: spec.tau,
    steps: times.length,
    seconds_per_step: times.reduce((a, b) => a + b, 0) / times.length,
    step_seconds: times,
    backend: backend.name,
    workers: 0,
    trainable_parameters: trainableParameterCount(lora.sites, spec.lora.rank),
  };
  if (flags.json) process.stdout.write(JSON.stringify(result) + '\n');
  else log.info(`${result.seconds_per_step.toFixed(3)} s per step`, { arch: result.arch, backend: result.backend });
}
