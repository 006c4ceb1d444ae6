/**
 * Which samples make minibatch t: every epoch the K-shot set is reshuffled by
 * a permutation from (seed, epoch); minibatches are consecutive slices of it;
 * a last partial slice is dropped; a batch larger than the set is the set.
 */
import { Purpose, RandomStream } from './rng.ts';

export interface BatchPlan {
  readonly epoch: number;
  readonly samples: readonly number[];
}

export const effectiveBatchSize = (batchSize: number, setSize: number): number => Math.min(batchSize, setSize);

export function batchAt(step: number, setSize: number, batchSize: number, seed: number): BatchPlan {
  const m = effectiveBatchSize(batchSize, setSize);
  const perEpoch = Math.floor(setSize / m);
  const epoch = Math.floor(step / perEpoch);
  const slot = step % perEpoch;
  const order = RandomStream.of(Purpose.epochPermutation, seed, epoch).permutation(setSize);
  return { epoch, samples: order.slice(slot * m, (slot + 1) * m) };
}

/** Cuts a minibatch into chunks of consecutive positions (the unit of work and of reduction). */
export function chunksOf(samples: readonly number[], chunkSize: number): { index: number; samples: number[] }[] {
  const chunks = [];
  for (let i = 0; i * chunkSize < samples.length; i++) chunks.push({ index: i, samples: samples.slice(i * chunkSize, (i + 1) * chunkSize) });
  return chunks;
}
