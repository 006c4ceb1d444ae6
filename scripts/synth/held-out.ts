/**
 * What pretraining must never see, shared by the corpus and the few-shot
 * tasks: held-out fill textures, held-out colour-shape combinations, and the
 * upper half of the 32-bit seed space, which belongs to the tasks alone.
 */
import { TEXTURES, type TextureName } from './attributes.ts';
import { mix32 } from './rng.ts';
import type { ColourShape, SceneConstraints } from './scene.ts';

/** Never drawn or named in pretraining: reserved for tasks that test unseen textures. */
export const HELD_OUT_TEXTURES: readonly TextureName[] = ['zigzag', 'wavy', 'crosshatched', 'speckled'];
export const SEEN_TEXTURES: readonly TextureName[] = TEXTURES.filter((t) => !HELD_OUT_TEXTURES.includes(t));

/** Both words are common in pretraining, the pair never is: the `shapes-colours` task must compose them. */
export const HELD_OUT_COMBOS: readonly ColourShape[] = [
  { colour: 'orange', shape: 'heart' },
  { colour: 'purple', shape: 'star' },
];

export const PRETRAIN_CONSTRAINTS: SceneConstraints = {
  main: { textures: SEEN_TEXTURES },
  second: { textures: SEEN_TEXTURES },
  excludeCombos: HELD_OUT_COMBOS,
};

const TASK_BIT = 0x80000000;
export const SPLITS = ['train', 'test'] as const;
export type Split = (typeof SPLITS)[number];

/** Seed of the index-th pretraining scene of a run: always below 2^31. */
export function pretrainSeed(runSeed: number, index: number): number {
  return ((mix32(runSeed) + index) & 0x7fffffff) >>> 0;
}

/**
 * Seed of one task image: the top bit set, then 7 bits of task, 1 of split,
 * 7 of class, 16 of index, so task seeds are disjoint from pretraining seeds
 * and from each other by construction.
 */
export function taskSeed(taskIndex: number, split: Split, classIndex: number, index: number): number {
  if (taskIndex >= 128 || classIndex >= 128 || index >= 65536) {
    throw new RangeError(`taskSeed: task ${taskIndex}, class ${classIndex}, image ${index} out of range`);
  }
  const splitBit = split === 'train' ? 0 : 1;
  return (TASK_BIT | (taskIndex << 24) | (splitBit << 23) | (classIndex << 16) | index) >>> 0;
}

export function isTaskSeed(seed: number): boolean {
  return (seed & TASK_BIT) !== 0;
}
