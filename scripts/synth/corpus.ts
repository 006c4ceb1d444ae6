/**
 * The pretraining corpus: an endless, seeded stream of (image, caption) pairs
 * drawn under PRETRAIN_CONSTRAINTS, addressable by index so that any process
 * can produce any slice of it without producing what comes before.
 */
import { captionFor } from './captions.ts';
import { PRETRAIN_CONSTRAINTS, pretrainSeed } from './held-out.ts';
import { renderScene } from './render.ts';
import { createRng } from './rng.ts';
import { sampleScene, type Scene } from './scene.ts';

export interface PretrainPair {
  /** RGB, HWC, 8-bit, size × size × 3 */
  readonly pixels: Uint8Array;
  readonly caption: string;
}

export interface CaptionedScene {
  readonly scene: Scene;
  readonly caption: string;
}

export function pretrainScene(runSeed: number, index: number): CaptionedScene {
  const rng = createRng(pretrainSeed(runSeed, index));
  const scene = sampleScene(rng, PRETRAIN_CONSTRAINTS);
  return { scene, caption: captionFor(scene, rng) };
}

export function pretrainPair(runSeed: number, index: number, size: number): PretrainPair {
  const { scene, caption } = pretrainScene(runSeed, index);
  return { pixels: renderScene(scene, size), caption };
}

/** Pairs start, start + 1, …, start + count − 1 of the run. */
export function* generatePretrainPairs(seed: number, count: number, size = 64, start = 0): Iterable<PretrainPair> {
  for (let i = start; i < start + count; i++) yield pretrainPair(seed, i, size);
}

/** The same captions as generatePretrainPairs, without rendering (for tokenizer training). */
export function* generateCaptions(seed: number, count: number, start = 0): Iterable<string> {
  for (let i = start; i < start + count; i++) yield pretrainScene(seed, i).caption;
}
