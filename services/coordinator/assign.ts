/**
 * Which worker computes which chunks of a round: whole chunks, in runs of
 * consecutive chunk indices, as many to each worker as its share of the
 * measured throughput (largest remainder), workers in the order given.
 * The reduction does not depend on it (chunk sums are added in chunk
 * order), so this only decides speed.
 */
import type { Chunk } from '../core/shard.ts';

export interface WorkerRate {
  readonly id: string;
  /** measured samples/s; null when not measured yet */
  readonly samplesPerSecond: number | null;
}

export interface Assignment {
  readonly workerId: string;
  readonly chunks: readonly Chunk[];
}

/** Rates with the unmeasured ones at the mean of the measured (1 when none is). */
export function effectiveRates(workers: readonly WorkerRate[]): number[] {
  const measured = workers.map((w) => w.samplesPerSecond).filter((r): r is number => r !== null && Number.isFinite(r) && r > 0);
  const fallback = measured.length ? measured.reduce((a, b) => a + b, 0) / measured.length : 1;
  return workers.map((w) => (w.samplesPerSecond !== null && Number.isFinite(w.samplesPerSecond) && w.samplesPerSecond > 0 ? w.samplesPerSecond : fallback));
}

/** Splits `chunks` (any order) over `workers`; workers that get nothing are left out. */
export function assignChunks(chunks: readonly Chunk[], workers: readonly WorkerRate[]): Assignment[] {
  if (workers.length === 0) throw new Error('internal: no workers to assign chunks to');
  const ordered = [...chunks].sort((a, b) => a.index - b.index);
  const rates = effectiveRates(workers);
  const total = rates.reduce((a, b) => a + b, 0);
  const exact = rates.map((r) => (r / total) * ordered.length);
  const counts = exact.map(Math.floor);
  let left = ordered.length - counts.reduce((a, b) => a + b, 0);
  const byRemainder = exact.map((x, i) => ({ i, rem: x - Math.floor(x) })).sort((a, b) => b.rem - a.rem || a.i - b.i);
  for (const { i } of byRemainder) {
    if (left === 0) break;
    counts[i]++;
    left--;
  }
  const out: Assignment[] = [];
  let at = 0;
  workers.forEach((w, i) => {
    if (counts[i] > 0) out.push({ workerId: w.id, chunks: ordered.slice(at, at + counts[i]) });
    at += counts[i];
  });
  return out;
}
