/**
 * What every process that computes shares: the backend choice (--backend,
 * then ADVCLIP_BACKEND, then automatic), its one log line, and loading a
 * model directory into a ClipModel.
 */
import { initBackend, parseBackendName, type BackendChoice } from '../core/backend.ts';
import { ClipModel } from '../core/clip.ts';
import { invalidArgument } from '../core/errors.ts';
import { loadClipModelDir, type ClipModelDir } from '../io/model-dir.ts';
import type { Logger } from '../protocol/log.ts';

function nativeThreads(): number | undefined {
  const raw = process.env.ADVCLIP_NATIVE_THREADS;
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw invalidArgument(`ADVCLIP_NATIVE_THREADS="${raw}": expected a positive integer`);
  return n;
}

/** `wanted`: --backend; then env ADVCLIP_BACKEND; then automatic. */
export async function startBackend(wanted: string | undefined, log: Logger): Promise<BackendChoice> {
  const choice = await initBackend(parseBackendName(wanted ?? process.env.ADVCLIP_BACKEND ?? 'auto'), { nativeThreads: nativeThreads() });
  log.info(`backend ${choice.name}`, choice.skipped.length ? { skipped: choice.skipped } : {});
  return choice;
}

/** wasm and cpu run transposed products slowly; TensorFlow and the native products do not. */
export const explicitTransposeFor = (backend: BackendChoice): boolean => backend.tfName !== 'tensorflow' && backend.name !== 'native';

export interface LoadedModel {
  readonly dir: ClipModelDir;
  readonly model: ClipModel;
}

export async function loadModel(path: string, backend: BackendChoice): Promise<LoadedModel> {
  const dir = await loadClipModelDir(path);
  const model = ClipModel.fromWeights(dir.config, dir.weights, { explicitTranspose: explicitTransposeFor(backend) });
  model.setNormalisation(dir.preprocess.mean, dir.preprocess.std);
  return { dir, model };
}
