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

/** A worker that can compute a second copy of a chunk: only one of the same backend kind gives the same bits. */
export interface PeerRate extends WorkerRate {
  readonly backend: string;
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

/**
 * Second copies of `picked` chunks (verification), planned with the round so
 * that they run alongside it: each goes to a worker of its first copy's
 * backend other than that one, the one that would finish it soonest given
 * what `plan` and the copies before it already gave it (samples / rate).
 * Chunks no such worker can take are left out. One assignment per worker.
 */
export function assignCopies(picked: readonly Chunk[], plan: readonly Assignment[], workers: readonly PeerRate[]): Assignment[] {
  const rates = effectiveRates(workers);
  const load = new Map(workers.map((w) => [w.id, 0]));
  const owner = new Map<number, string>();
  for (const a of plan) {
    for (const c of a.chunks) owner.set(c.index, a.workerId);
    load.set(a.workerId, (load.get(a.workerId) ?? 0) + a.chunks.reduce((n, c) => n + c.samples.length, 0));
  }
  const backend = new Map(workers.map((w) => [w.id, w.backend]));
  const copies = new Map<string, Chunk[]>();
  for (const c of [...picked].sort((a, b) => a.index - b.index)) {
    const first = owner.get(c.index);
    let best = -1;
    workers.forEach((w, i) => {
      if (w.id === first || w.backend !== backend.get(first ?? '')) return;
      const finish = (load.get(w.id)! + c.samples.length) / rates[i];
      if (best < 0 || finish < (load.get(workers[best].id)! + c.samples.length) / rates[best]) best = i;
    });
    if (best < 0) continue;
    const id = workers[best].id;
    load.set(id, load.get(id)! + c.samples.length);
    copies.set(id, [...(copies.get(id) ?? []), c]);
  }
  return workers.flatMap((w) => (copies.has(w.id) ? [{ workerId: w.id, chunks: copies.get(w.id)! }] : []));
}
