/**
 * A tiny random CLIP (archConfig('tiny')) and a tiny learnable task on it:
 * the class of an image is its colour, with one prompt per class.
 */
import { archConfig, randomClipWeights } from '../../../services/core/presets.ts';
import { RandomStream } from '../../../services/core/rng.ts';
import type { SampleBatch, SampleSource } from '../../../services/core/shard.ts';
import type { TrainSpec } from '../../../services/core/train-spec.ts';
import { defaultLoraConfig } from '../../../services/core/lora.ts';
import { validateTrainSpec } from '../../../services/core/train-spec.ts';
import type { ClipConfig } from '../../../services/core/clip-config.ts';
import type { HostTensor } from '../../../services/core/tensor.ts';

export const tinyConfig: ClipConfig = archConfig('tiny');
export const tinyWeights = (seed = 1): Map<string, HostTensor> => randomClipWeights(tinyConfig, seed);

/** class colours, kept inside (0,1) with room for noise and small perturbations */
const COLOURS = [
  [0.8, 0.2, 0.2],
  [0.2, 0.8, 0.2],
  [0.2, 0.2, 0.8],
  [0.8, 0.8, 0.2],
  [0.2, 0.8, 0.8],
  [0.8, 0.2, 0.8],
];

export interface ColourTask {
  readonly classes: number;
  readonly size: number;
  readonly labels: readonly number[];
  /** [n, S, S, 3] in [0,1] */
  readonly pixels: Float32Array;
  /** BOS, two class tokens, EOS (tiny vocab: BOS 510, EOS 511) */
  readonly prompts: readonly (readonly number[])[];
  readonly source: SampleSource;
}

export function colourTask(n: number, classes = 3, noise = 0.1, seed = 5): ColourTask {
  const size = tinyConfig.vision.imageSize;
  const per = size * size * 3;
  const labels = Array.from({ length: n }, (_, i) => i % classes);
  const pixels = new Float32Array(n * per);
  const rng = RandomStream.of(seed, 0xc0105);
  labels.forEach((y, i) => {
    for (let j = 0; j < per; j++) pixels[i * per + j] = COLOURS[y][j % 3] + (2 * rng.uniform() - 1) * noise;
  });
  const { bosTokenId: bos, eosTokenId: eos } = tinyConfig.text;
  const prompts = labels.slice(0, classes).map((c) => [bos, 10 + 7 * c, 100 + 13 * c, eos]);
  const source: SampleSource = async (samples) => batchOf(samples);
  const batchOf = (samples: readonly number[]): SampleBatch => {
    const out = new Float32Array(samples.length * per);
    samples.forEach((s, i) => out.set(pixels.subarray(s * per, (s + 1) * per), i * per));
    return { pixels: out, labels: samples.map((s) => labels[s]) };
  };
  return { classes, size, labels, pixels, prompts, source };
}

/** A spec for tests: the defaults where they fit a tiny run, overridable. */
export function tinySpec(overrides: Partial<TrainSpec> = {}): TrainSpec {
  return validateTrainSpec({
    method: 'advclip-lora',
    seed: 1,
    lora: { ...defaultLoraConfig, dropout: 0 },
    epsilon: 8 / 255,
    tau: 2,
    perturbation: 'universal',
    deltaStep: 'sign',
    lrDelta: 4 / 255,
    deltaCalibration: 'none',
    loraUpdate: 'jacobi',
    optimizer: 'sgd',
    lr: 0.1,
    schedule: 'constant',
    weightDecay: 0,
    iters: 10,
    batchSize: 8,
    chunkSize: 8,
    augment: 'none',
    sync: 'exact',
    aggregation: { rule: 'mean', trim: 1 },
    verifyFraction: 0,
    cleanLoss: false,
    resetDeltaEachEpoch: false,
    ...overrides,
  });
}
