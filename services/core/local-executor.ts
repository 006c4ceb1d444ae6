/**
 * Runs every round in this process on one ShardComputer: the single-process
 * trainer, and the reference the cluster must equal.
 */
import type { LoraWeights } from './lora.ts';
import { AdapterTensors, type ShardComputer } from './shard.ts';
import type { ExecutedRound, Executor } from './trainer.ts';

export interface LocalExecutor {
  readonly execute: Executor;
  dispose(): void;
}

export function localExecutor(shard: ShardComputer): LocalExecutor {
  let held: { version: number; tensors: AdapterTensors } | null = null;
  const tensorsAt = (lora: LoraWeights, version: number) => {
    if (held?.version !== version) {
      held?.tensors.dispose();
      held = { version, tensors: new AdapterTensors(lora) };
    }
    return held.tensors;
  };
  return {
    async execute(task, lora, version): Promise<ExecutedRound> {
      const r = await shard.compute(task, tensorsAt(lora, version), version);
      return { chunks: r.chunks, localDeltas: r.localDelta ? [r.localDelta] : [], shares: [{ worker: 'local', chunks: r.chunks, localDelta: r.localDelta }] };
    },
    dispose() {
      held?.tensors.dispose();
      held = null;
      shard.dispose();
    },
  };
}
