/**
 * Checkpoints of a training run (--checkpoint-dir, --checkpoint-every,
 * --checkpoint-keep): resume from the newest valid checkpoint at start,
 * one every N steps, one at the end (finished, or stopped by SIGTERM).
 * The format and the atomic write are io/checkpoint.ts's.
 */
import { invalidArgument } from '../core/errors.ts';
import type { LoraWeights } from '../core/lora.ts';
import type { TrainState } from '../core/trainer.ts';
import { DEFAULT_KEEP_CHECKPOINTS, loadNewestCheckpoint, runHash, writeCheckpoint, type RunIdentity } from '../io/checkpoint.ts';
import type { FlagTable, FlagValues } from './args.ts';
import type { Logger } from './log.ts';

export const checkpointFlags: FlagTable = {
  'checkpoint-dir': { type: 'string', arg: 'DIR', help: 'write checkpoints here and resume from the newest valid one (a checkpoint of other training flags, model or data is refused)' },
  'checkpoint-every': { type: 'int', default: 50, arg: 'N', help: 'steps between checkpoints (one more when the run ends or drains)' },
  'checkpoint-keep': { type: 'int', default: DEFAULT_KEEP_CHECKPOINTS, arg: 'K', help: 'newest checkpoints kept' },
};

export interface Checkpointing {
  /** The newest valid checkpoint's state, or `fresh` when there is none. */
  resume(fresh: TrainState): Promise<TrainState>;
  /** After a step: a checkpoint when the step is a multiple of N; its path. */
  afterStep(state: TrainState): Promise<string | null>;
  /** At the end: a checkpoint unless the last step has one; its path. */
  final(state: TrainState): Promise<string | null>;
}

/** null without --checkpoint-dir. */
export function checkpointingFrom(flags: FlagValues, identity: RunIdentity, initial: LoraWeights, log: Logger): Checkpointing | null {
  const dir = flags['checkpoint-dir'] as string | undefined;
  if (!dir) return null;
  const every = (flags['checkpoint-every'] as number | undefined) ?? 50;
  const keep = (flags['checkpoint-keep'] as number | undefined) ?? DEFAULT_KEEP_CHECKPOINTS;
  if (!Number.isInteger(every) || every < 1) throw invalidArgument(`--checkpoint-every must be ≥ 1, got ${every}`);
  if (!Number.isInteger(keep) || keep < 1) throw invalidArgument(`--checkpoint-keep must be ≥ 1, got ${keep}`);
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
