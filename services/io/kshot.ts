/**
 * K-shot sampling for the few-shot protocol: `shots` training images per
 * class, drawn without replacement. Each class draws from its own random
 * stream keyed by (seed, class), so the picks of a class depend only on the
 * seed and that class's images, not on how many other classes there are or
 * what they hold; every worker that samples the same split gets the same set.
 */
import { invalidArgument } from '../core/errors.ts';
import { Purpose, RandomStream } from '../core/rng.ts';
import type { LabeledImage } from './dataset.ts';

/**
 * Picks `shots` items of every class 0..numClasses-1, ordered by class then
 * by pick order. `classNames`, when given, names classes in errors.
 */
export function sampleKShot(
  items: readonly LabeledImage[],
  numClasses: number,
  shots: number,
  seed: number,
  classNames?: readonly string[],
): LabeledImage[] {
  if (!Number.isInteger(numClasses) || numClasses < 1) {
    throw invalidArgument(`K-shot: numClasses must be an integer >= 1, got ${numClasses}`);
  }
  if (!Number.isInteger(shots) || shots < 1) throw invalidArgument(`K-shot: shots must be an integer >= 1, got ${shots}`);
  if (!Number.isSafeInteger(seed) || seed < 0) throw invalidArgument(`K-shot: seed must be an integer >= 0, got ${seed}`);

  const byClass: LabeledImage[][] = Array.from({ length: numClasses }, () => []);
  for (const [i, item] of items.entries()) {
    if (!Number.isInteger(item.label) || item.label < 0 || item.label >= numClasses) {
      throw invalidArgument(`K-shot: item ${i} (${item.path}) has label ${item.label}, out of range [0, ${numClasses})`);
    }
    byClass[item.label].push(item);
  }

  // seeds above 2^32 keep their high bits as a separate key word
  const seedLo = seed >>> 0;
  const seedHi = Math.floor(seed / 2 ** 32) >>> 0;
  return byClass.flatMap((pool, label) => {
    if (pool.length < shots) {
      const name = classNames?.[label] !== undefined ? ` "${classNames[label]}"` : '';
      throw invalidArgument(`K-shot: class ${label}${name} has ${pool.length} training images, fewer than shots = ${shots}`);
    }
    // partial Fisher–Yates: the first `shots` positions are the picks, in draw order
    const rng = RandomStream.of(Purpose.kShot, seedLo, seedHi, label);
    const order = pool.slice();
    for (let i = 0; i < shots; i++) {
      const j = i + rng.below(order.length - i);
      [order[i], order[j]] = [order[j], order[i]];
    }
    return order.slice(0, shots);
  });
}
