/**
 * The synthetic run the benchmarks time: its TrainSpec, random inputs for
 * a model in memory, and a throwaway model directory and data set for
 * timing the cluster on a named architecture: random weights in HF layout, the shipped model's tokenizer,
 * random-noise images, class names long enough that every prompt fills the
 * text tower (as the PyTorch anchor's 77-token prompts). Workers load them
 * from disk like any real run, so the measurement includes the real path.
 */
import { copyFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { ClipConfig } from '../core/clip-config.ts';
import { notFound } from '../core/errors.ts';
import { randomClipWeights } from '../core/presets.ts';
import { RandomStream } from '../core/rng.ts';
import type { SampleSource } from '../core/shard.ts';
import { validateTrainSpec, type TrainSpec } from '../core/train-spec.ts';
import { defaultLoraConfig } from '../core/lora.ts';
import { encodePng } from '../io/images.ts';
import { writeClipModelDir } from '../io/model-dir.ts';
import { ClipTokenizer } from '../io/tokenizer.ts';

export const SYNTHETIC_TOKENIZER = new URL('../../models/clip-small/tokenizer.json', import.meta.url);

export interface SyntheticRun {
  readonly model: string;
  readonly data: string;
  readonly shots: number;
}

/** A class name of random letters, tokenised to far more than the text tower takes. */
function longClassName(rng: RandomStream, tokens: number): string {
  const words = Array.from({ length: Math.ceil(tokens / 3) }, () => Array.from({ length: 3 }, () => String.fromCharCode(97 + rng.below(26))).join(''));
  return words.join('_').slice(0, 240);
}

export async function writeSyntheticRun(dir: string, config: ClipConfig, samples: number, classes: number): Promise<SyntheticRun> {
  const tokenizerPath = SYNTHETIC_TOKENIZER.pathname;
  const tokenizer = await ClipTokenizer.fromFile(tokenizerPath).catch(() => {
    throw notFound(`${tokenizerPath}: the synthetic benchmark borrows the shipped model's tokenizer`);
  });
  // the tokenizer's ids must exist in the model; the legacy argmax pooling (eos 2) finds its EOS, the highest id
  const text = { ...config.text, vocabSize: Math.max(config.text.vocabSize, tokenizer.vocabSize), ...(config.text.eosTokenId === 2 ? {} : { eosTokenId: tokenizer.eosTokenId, bosTokenId: tokenizer.bosTokenId }) };
  const model = join(dir, 'model');
  const synthetic = { ...config, text };
  await writeClipModelDir(model, { config: synthetic, weights: randomClipWeights(synthetic, 1) });
  await copyFile(tokenizerPath, join(model, 'tokenizer.json'));

  const data = join(dir, 'data');
  const rng = new RandomStream(11);
  const shots = Math.ceil(samples / classes);
  const size = config.vision.imageSize;
  for (let c = 0; c < classes; c++) {
    const name = longClassName(rng, text.maxPositionEmbeddings);
    for (const [split, count] of [['train', shots], ['test', 1]] as const) {
      await mkdir(join(data, split, name), { recursive: true });
      for (let i = 0; i < count; i++) {
        const pixels = Float32Array.from({ length: size * size * 3 }, () => rng.uniform());
        await encodePng({ shape: [size, size, 3], data: pixels }, join(data, split, name, `${i}.png`));
      }
    }
  }
  return { model, data, shots };
}

/** The step the benchmarks time: LoRA dropout off and no augmentation, as the PyTorch anchor; `steps` measured after one warm-up. */
export function benchSpec(o: { readonly tau: number; readonly steps: number; readonly batch: number; readonly chunkSize: number }): TrainSpec {
  return validateTrainSpec({
    method: 'advclip-lora',
    seed: 1,
    lora: { ...defaultLoraConfig, dropout: 0 },
    epsilon: 1 / 255,
    tau: o.tau,
    perturbation: 'universal',
    deltaStep: 'sign',
    lrDelta: 0.5 / 255,
    deltaCalibration: 'none',
    loraUpdate: 'jacobi',
    optimizer: 'adamw',
    lr: 2e-4,
    schedule: 'constant',
    weightDecay: 1e-2,
    iters: 1 + o.steps,
    batchSize: o.batch,
    chunkSize: o.chunkSize,
    augment: 'none',
    sync: 'exact',
    aggregation: { rule: 'mean', trim: 1 },
    verifyFraction: 0,
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
