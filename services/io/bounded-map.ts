import { invalidArgument } from '../core/errors.ts';

/**
 * Maps an async function over items with at most `concurrency` calls in
 * flight, keeping results in input order. Decoding thousands of images with
 * an unbounded Promise.all would hold every file in memory at once and
 * starve the event loop; a small fixed pool keeps memory flat.
 *
 * The first failure stops new calls from starting and is the one rejected
 * with, so an error names the first bad item rather than a random later one.
 */
export async function mapBounded<T, R>(
  items: readonly T[],
  concurrency: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw invalidArgument(`concurrency must be an integer >= 1, got ${concurrency}`);
  }
  const results = new Array<R>(items.length);
  let next = 0;
  let failed = false;
  const run = async (): Promise<void> => {
    while (!failed && next < items.length) {
      const index = next++;
      try {
        results[index] = await fn(items[index], index);
      } catch (error) {
        failed = true;
        throw error;
      }
    }
  };
  const pool = Array.from({ length: Math.min(concurrency, items.length) }, run);
  await Promise.all(pool);
  return results;
}
