/**
 * What RegisterReply.run_config_json holds: the training flags of the run
 * (the worker rebuilds the same setup from them, with its own model and
 * data paths if it has them), the sync mode, and fingerprints of the model
 * and the K-shot training set the worker must reproduce.
 */
import { invalidArgument } from '../core/errors.ts';
import { SyncModes, type SyncMode } from '../core/train-spec.ts';

export interface RunConfig {
  /** training flags by long name (as `advclip train` takes them); model and data as absolute paths */
  readonly flags: Readonly<Record<string, string | number | boolean | string[] | undefined>>;
  readonly sync: SyncMode;
  readonly model_sha256: string;
  readonly train_set_sha256: string;
}

export function parseRunConfig(json: string): RunConfig {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    throw invalidArgument('run_config_json is not JSON');
  }
  const c = (value ?? {}) as Partial<RunConfig>;
  if (typeof c.flags !== 'object' || c.flags === null || Array.isArray(c.flags)) throw invalidArgument('run_config_json: "flags" must be an object');
  if (!SyncModes.includes(c.sync as SyncMode)) throw invalidArgument(`run_config_json: "sync" must be one of ${SyncModes.join('|')}`);
  if (typeof c.model_sha256 !== 'string' || typeof c.train_set_sha256 !== 'string') throw invalidArgument('run_config_json: model_sha256 and train_set_sha256 are required');
  return c as RunConfig;
}
