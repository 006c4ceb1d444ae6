/**
 * Training checkpoints: everything a run needs to go on bit-identically —
 * the adapters, the optimiser moments, the universal δ and its epoch, the
 * step and the adapter version — in one safetensors file whose metadata
 * holds the run hash and a SHA-256 over the rest of the file.
 *
 * There is no RNG state to save: every random draw is counter-based from
 * (seed, step, round, sample) (core/rng.ts), and the data cursor is
 * batchAt(step, …), so the seed (in the run hash) and the step are the
 * whole random state and the whole data position.
 *
 * Files are `checkpoint-<step>.safetensors` in one directory, written
 * atomically (temp file, fsync, rename, fsync of the directory); the newest
 * `keep` are kept. Loading takes the newest file that parses and whose
 * checksum holds, and names every corrupt one it skips; a valid checkpoint
 * of another run configuration is refused, never skipped.
 */
import { createHash } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { AdvclipError, dataLoss, failedPrecondition } from '../core/errors.ts';
import type { LoraWeights } from '../core/lora.ts';
import type { OptimizerState } from '../core/optim.ts';
import { hostTensor, type HostTensor } from '../core/tensor.ts';
import type { TrainSpec } from '../core/train-spec.ts';
import type { TrainState } from '../core/trainer.ts';
import { parseSafetensorsHeader, parseSafetensors, writeSafetensors } from './safetensors.ts';

export const CHECKPOINT_FORMAT = 'advclip-checkpoint/1';
export const DEFAULT_KEEP_CHECKPOINTS = 3;

const FILE = /^checkpoint-(\d+)\.safetensors$/;
export const checkpointFileName = (step: number): string => `checkpoint-${String(step).padStart(8, '0')}.safetensors`;

/** What makes two runs the same run: every training setting, the model and the K-shot set. */
export interface RunIdentity {
  readonly spec: TrainSpec;
  readonly modelSha256: string;
  readonly trainSetSha256: string;
}

/** SHA-256 (hex) of the run identity, keys sorted (paths and outputs are not part of it). */
export function runHash(identity: RunIdentity): string {
  return createHash('sha256').update(canonicalJson(identity)).digest('hex');
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value).filter(([, v]) => v !== undefined).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

const tensorNames = (i: number) => ({ a: `lora.a.${i}`, b: `lora.b.${i}`, m: [`optim.m.${2 * i}`, `optim.m.${2 * i + 1}`], v: [`optim.v.${2 * i}`, `optim.v.${2 * i + 1}`] });

/** The checkpoint file of a state (pure). */
export function encodeCheckpoint(state: TrainState, hash: string): Uint8Array {
  const tensors = new Map<string, HostTensor>();
  const flat = (data: Float32Array) => hostTensor([data.length], data);
  state.lora.sites.forEach((_, i) => {
    const n = tensorNames(i);
    tensors.set(n.a, state.lora.a[i]);
    tensors.set(n.b, state.lora.b[i]);
  });
  state.optimizer.m.forEach((m, j) => tensors.set(`optim.m.${j}`, flat(m)));
  state.optimizer.v.forEach((v, j) => tensors.set(`optim.v.${j}`, flat(v)));
  if (state.delta) tensors.set('delta', flat(state.delta));
  const metadata: Record<string, string> = {
    format: CHECKPOINT_FORMAT,
    run_hash: hash,
    step: String(state.step),
    version: String(state.version),
    delta_epoch: String(state.deltaEpoch),
    optimizer: state.optimizer.name,
    sites: JSON.stringify(state.lora.sites.map((s) => s.key)),
    // a float64's shortest round-trip decimal: the resumed run steps with the same bits
    ...(state.calibratedLrDelta !== null ? { calibrated_lr_delta: String(state.calibratedLrDelta) } : {}),
  };
  const unsigned = writeSafetensors(tensors, { metadata });
  return writeSafetensors(tensors, { metadata: { ...metadata, sha256: checksum(unsigned, 'checkpoint') } });
}

/** SHA-256 over the tensor table, the metadata (without `sha256`) and the data bytes. */
function checksum(bytes: Uint8Array, source: string): string {
  const { entries, metadata, dataStart } = parseSafetensorsHeader(bytes, source);
  const { sha256: _, ...rest } = metadata;
  const table = [...entries].sort(([a], [b]) => (a < b ? -1 : 1)).map(([name, e]) => [name, e.dtype, e.shape, e.begin, e.end]);
  return createHash('sha256').update(canonicalJson({ table, metadata: rest })).update(bytes.subarray(dataStart)).digest('hex');
}

/**
 * The state in a checkpoint file (pure). DATA_LOSS when the file is corrupt
 * (parse, checksum, missing or misshapen tensors); FAILED_PRECONDITION when
 * it is sound but of another run. `initial` gives the adapter structure.
 */
export function decodeCheckpoint(bytes: Uint8Array, source: string, expect: { readonly runHash: string; readonly initial: LoraWeights }): TrainState {
  const file = parseSafetensors(bytes, source);
  const meta = file.metadata;
  if (meta.format !== CHECKPOINT_FORMAT) throw dataLoss(`${source}: not an advclip checkpoint (format ${JSON.stringify(meta.format ?? null)}, expected ${CHECKPOINT_FORMAT})`);
  if (!meta.sha256) throw dataLoss(`${source}: checkpoint has no sha256 in its metadata`);
  const actual = checksum(bytes, source);
  if (actual !== meta.sha256) throw dataLoss(`${source}: checksum mismatch (stored ${meta.sha256.slice(0, 12)}…, computed ${actual.slice(0, 12)}…): corrupt`);
  if (meta.run_hash !== expect.runHash) {
    throw failedPrecondition(
      `${source}: checkpoint of a different run configuration (run hash ${String(meta.run_hash).slice(0, 12)}…, this run ${expect.runHash.slice(0, 12)}…): ` +
        'resume with the flags, model and data it was written with, or use another --checkpoint-dir',
    );
  }
  const int = (key: string) => {
    const n = Number(meta[key]);
    if (!Number.isSafeInteger(n) || n < 0) throw dataLoss(`${source}: metadata "${key}" is not a count: ${JSON.stringify(meta[key])}`);
    return n;
  };
  const { initial } = expect;
  const sites = JSON.stringify(initial.sites.map((s) => s.key));
  if (meta.sites !== sites) throw dataLoss(`${source}: LoRA sites differ from this run's`);
  const take = (name: string, shape: readonly number[]): Float32Array => {
    const t = file.tensors.get(name);
    if (!t) throw dataLoss(`${source}: tensor "${name}" is missing`);
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) throw dataLoss(`${source}: tensor "${name}" has shape [${t.shape.join(',')}], expected [${shape.join(',')}]`);
    return Float32Array.from(t.data); // own the memory: the file buffer is not kept
  };
  const a = initial.a.map((t, i) => hostTensor(t.shape, take(tensorNames(i).a, t.shape)));
  const b = initial.b.map((t, i) => hostTensor(t.shape, take(tensorNames(i).b, t.shape)));
  const sizes = initial.sites.flatMap((_, i) => [initial.a[i].data.length, initial.b[i].data.length]);
  const name = meta.optimizer as OptimizerState['name'];
  if (name !== 'adamw' && name !== 'sgd') throw dataLoss(`${source}: unknown optimizer ${JSON.stringify(meta.optimizer)}`);
  const moments = (kind: 'm' | 'v') => (name === 'adamw' ? sizes.map((n, j) => take(`optim.${kind}.${j}`, [n])) : []);
  const deltaTensor = file.tensors.get('delta');
  const calibrated = meta.calibrated_lr_delta === undefined ? null : Number(meta.calibrated_lr_delta);
  if (calibrated !== null && !(Number.isFinite(calibrated) && calibrated > 0)) throw dataLoss(`${source}: metadata "calibrated_lr_delta" is not a positive number: ${JSON.stringify(meta.calibrated_lr_delta)}`);
  return {
    step: int('step'),
    version: int('version'),
    lora: { ...initial, a, b },
    optimizer: { name, m: moments('m'), v: moments('v') },
    delta: deltaTensor ? take('delta', deltaTensor.shape) : null,
    deltaEpoch: int('delta_epoch'),
    calibratedLrDelta: calibrated,
  };
}

/** Checkpoint files of a directory, newest step first (none when it does not exist). */
export async function listCheckpoints(dir: string): Promise<{ readonly step: number; readonly path: string }[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  return names
    .map((name) => ({ name, m: FILE.exec(name) }))
    .filter((x): x is { name: string; m: RegExpExecArray } => x.m !== null)
    .map(({ name, m }) => ({ step: Number(m[1]), path: join(dir, name) }))
    .sort((x, y) => y.step - x.step);
}

/** Writes the state's checkpoint atomically, then removes all but the newest `keep`; its path. */
export async function writeCheckpoint(dir: string, state: TrainState, hash: string, keep = DEFAULT_KEEP_CHECKPOINTS): Promise<string> {
  await mkdir(dir, { recursive: true });
  const path = join(dir, checkpointFileName(state.step));
  const temp = join(dir, `.${checkpointFileName(state.step)}.${process.pid}.tmp`);
  const bytes = encodeCheckpoint(state, hash);
  const file = await open(temp, 'w', 0o600);
  try {
    await file.writeFile(bytes);
    await file.sync();
  } finally {
    await file.close();
  }
  await rename(temp, path);
  await syncDir(dir);
  for (const old of (await listCheckpoints(dir)).slice(Math.max(1, keep))) await rm(old.path, { force: true });
  return path;
}

async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

export interface LoadedCheckpoint {
  readonly path: string;
  readonly state: TrainState;
}

/**
 * The newest valid checkpoint of `dir` (null when there is none); each
 * corrupt newer file is reported through `warn` with its name and skipped.
 * A checkpoint of another run configuration throws FAILED_PRECONDITION.
 */
export async function loadNewestCheckpoint(dir: string, expect: { readonly runHash: string; readonly initial: LoraWeights }, warn: (message: string) => void): Promise<LoadedCheckpoint | null> {
  for (const { path } of await listCheckpoints(dir)) {
    try {
      return { path, state: decodeCheckpoint(await readFile(path), path, expect) };
    } catch (err) {
      if (!(err instanceof AdvclipError) || (err.code !== 'DATA_LOSS' && err.code !== 'RESOURCE_EXHAUSTED')) throw err;
      warn(`skipping corrupt checkpoint ${path}: ${err.message}`);
    }
  }
  return null;
}
