/**
 * Pretraining minibatches: step k of a run takes pairs k·B … k·B + B − 1 of
 * the seeded corpus (never a task seed), pixels scaled to [0,1] and captions
 * tokenized with the trained BPE, padded to the batch's longest caption.
 */
import { pretrainPair } from '../synth/corpus.ts';
import type { ClipTokenizer } from '../../services/io/tokenizer.ts';

export interface PretrainBatch {
  /** [B, size, size, 3] in [0,1], HWC */
  readonly pixels: Float32Array;
  readonly shape: [number, number, number, number];
  /** BOS … EOS, padded with EOS to the longest row */
  readonly tokens: number[][];
  readonly captions: string[];
}

export function pretrainBatch(seed: number, step: number, batch: number, size: number, tokenizer: ClipTokenizer, contextLength: number): PretrainBatch {
  const perImage = size * size * 3;
  const pixels = new Float32Array(batch * perImage);
  const captions: string[] = [];
  for (let i = 0; i < batch; i++) {
    const pair = pretrainPair(seed, step * batch + i, size);
    for (let j = 0; j < perImage; j++) pixels[i * perImage + j] = pair.pixels[j] / 255;
    captions.push(pair.caption);
  }
  return { pixels, shape: [batch, size, size, 3], tokens: tokenizer.encodeBatch(captions, contextLength).ids, captions };
}
