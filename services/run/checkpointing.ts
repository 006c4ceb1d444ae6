/**
 * Checkpoints of a training run: resume from the newest valid checkpoint at
 * start, one every N steps, one at the end (finished, or stopped by
 * SIGTERM). The format and the atomic write are io/checkpoint.ts's.
 */
import type { LoraWeights } from '../core/lora.ts';
import type { TrainState } from '../core/trainer.ts';
import { loadNewestCheckpoint, runHash, writeCheckpoint, type RunIdentity } from '../io/checkpoint.ts';
import type { Logger } from '../protocol/log.ts';

export interface CheckpointOptions {
  readonly dir: string;
  /** steps between checkpoints */
  readonly every: number;
  /** newest checkpoints kept */
  readonly keep: number;
}

export interface Checkpointing {
  /** The newest valid checkpoint's state, or `fresh` when there is none. */
  resume(fresh: TrainState): Promise<TrainState>;
  /** After a step: a checkpoint when the step is a multiple of N; its path. */
  afterStep(state: TrainState): Promise<string | null>;
  /** At the end: a checkpoint unless the last step has one; its path. */
  final(state: TrainState): Promise<string | null>;
}

export function checkpointingFrom({ dir, every, keep }: CheckpointOptions, identity: RunIdentity, initial: LoraWeights, log: Logger): Checkpointing {
  const hash = runHash(identity);
  let lastWritten = -1;
  const write = async (state: TrainState) => {
    const path = await writeCheckpoint(dir, state, hash, keep);
    lastWritten = state.step;
    return path;
  };
  return {
    async resume(fresh) {
      const loaded = await loadNewestCheckpoint(dir, { runHash: hash, initial }, (m) => log.warn(m));
      if (!loaded) {
        log.info(`no checkpoint in ${dir}: starting at step 0`);
        return fresh;
      }
      log.info(`resuming from ${loaded.path} at step ${loaded.state.step}`, { step: loaded.state.step, adapter_version: loaded.state.version });
      lastWritten = loaded.state.step;
      return loaded.state;
    },
    afterStep: (state) => (state.step % every === 0 ? write(state) : Promise.resolve(null)),
    final: (state) => (state.step !== lastWritten ? write(state) : Promise.resolve(null)),
  };
}
