/**
 * A throwaway model directory and data set for timing the cluster on a named
 * architecture: random weights in HF layout, the shipped model's tokenizer,
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
