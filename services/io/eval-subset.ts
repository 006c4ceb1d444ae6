/**
 * The test images an evaluation during training covers: a class-balanced,
 * seeded subset of the test split. Each class's images are shuffled by their
 * own stream keyed by (seed, class), then taken in turn, one per class, until
 * `limit` are taken, so every class has ⌊limit/C⌋ or one more (as far as it
 * has images) and the coordinator and every worker pick the same images.
 */
import { invalidArgument } from '../core/errors.ts';
import { Purpose, RandomStream } from '../core/rng.ts';
import type { LabeledImage } from './dataset.ts';

export function balancedSubset(items: readonly LabeledImage[], numClasses: number, limit: number, seed: number): LabeledImage[] {
  if (!Number.isInteger(limit) || limit < 1) throw invalidArgument(`evaluation subset: limit must be an integer ≥ 1, got ${limit}`);
  const byClass: LabeledImage[][] = Array.from({ length: numClasses }, () => []);
  for (const [i, item] of items.entries()) {
    if (!Number.isInteger(item.label) || item.label < 0 || item.label >= numClasses) {
      throw invalidArgument(`evaluation subset: test item ${i} (${item.path}) has label ${item.label}, out of range [0, ${numClasses})`);
    }
    byClass[item.label].push(item);
  }
  const seedLo = seed >>> 0;
  const seedHi = Math.floor(seed / 2 ** 32) >>> 0;
  const shuffled = byClass.map((pool, label) => {
    const rng = RandomStream.of(Purpose.evalSubset, seedLo, seedHi, label);
    const order = pool.slice();
    for (let i = order.length - 1; i > 0; i--) {
      const j = rng.below(i + 1);
      [order[i], order[j]] = [order[j], order[i]];
    }
    return order;
  });
  const picked: LabeledImage[] = [];
  for (let round = 0; picked.length < Math.min(limit, items.length); round++) {
    for (const pool of shuffled) {
      if (round < pool.length && picked.length < limit) picked.push(pool[round]);
    }
  }
  return picked;
}
