/**
 * Picks the tfjs compute backend once per process: native TensorFlow with CUDA,
 * native TensorFlow on CPU, WebAssembly with oneDNN/OpenBLAS products (`native`,
 * see native-kernels.ts), WebAssembly (SIMD), then plain JS. The TensorFlow
 * packages are optional dependencies (their install downloads libtensorflow)
 * and the addon is built only where libdnnl-dev or libopenblas-dev is, so
 * each is tried and skipped, with the reason, when it is not there.
 */
import * as tf from '@tensorflow/tfjs';
import { invalidArgument } from './errors.ts';
import { installNativeKernels, loadNativeAddon } from './native-kernels.ts';

export const BackendNames = ['auto', 'node-gpu', 'node', 'native', 'wasm', 'cpu'] as const;
export type BackendName = (typeof BackendNames)[number];

export interface BackendChoice {
  /** what we asked for and got, in our names */
  readonly name: Exclude<BackendName, 'auto'>;
  /** tfjs' own backend name (`tensorflow`, `wasm`, `cpu`) */
  readonly tfName: string;
  /** why the ones before it were skipped */
  readonly skipped: readonly string[];
}

export interface BackendOptions {
  /** threads of the native products (default: every core) */
  readonly nativeThreads?: number;
}

const order: readonly Exclude<BackendName, 'auto'>[] = ['node-gpu', 'node', 'native', 'wasm', 'cpu'];

/** Loads what the backend needs and returns tfjs' name for it, plus what to do once it is set. */
async function tryBackend(name: Exclude<BackendName, 'auto'>, opts: BackendOptions): Promise<{ tfName: string; onSet?: () => void }> {
  switch (name) {
    case 'node-gpu':
      await import('@tensorflow/tfjs-node-gpu' as string);
      return { tfName: 'tensorflow' };
    case 'node':
      await import('@tensorflow/tfjs-node' as string);
      return { tfName: 'tensorflow' };
    case 'native': {
      const addon = loadNativeAddon();
      if (opts.nativeThreads !== undefined) addon.setThreads(opts.nativeThreads);
      await import('@tensorflow/tfjs-backend-wasm');
      return { tfName: 'wasm', onSet: () => void installNativeKernels(addon) };
    }
    case 'wasm':
      await import('@tensorflow/tfjs-backend-wasm');
      return { tfName: 'wasm' };
    case 'cpu':
      return { tfName: 'cpu' };
  }
}

export function parseBackendName(value: string): BackendName {
  if ((BackendNames as readonly string[]).includes(value)) return value as BackendName;
  throw invalidArgument(`unknown backend "${value}": expected one of ${BackendNames.join(', ')}`);
}

let chosen: BackendChoice | null = null;

/** Initialises the backend (idempotent: the first choice in a process stands). */
export async function initBackend(preference: BackendName = 'auto', opts: BackendOptions = {}): Promise<BackendChoice> {
  if (chosen) return chosen;
  const candidates = preference === 'auto' ? order : [preference];
  const skipped: string[] = [];
  for (const name of candidates) {
    try {
      const { tfName, onSet } = await tryBackend(name, opts);
      if (!(await tf.setBackend(tfName))) throw new Error(`tf.setBackend('${tfName}') refused`);
      await tf.ready();
      onSet?.();
      chosen = { name, tfName, skipped };
      return chosen;
    } catch (err) {
      const reason = err instanceof Error ? err.message.split('\n')[0] : String(err);
      if (preference !== 'auto') throw invalidArgument(`backend "${name}" is not available: ${reason}`);
      skipped.push(`${name}: ${reason}`);
    }
  }
  throw invalidArgument(`no tfjs backend could start (${skipped.join('; ')})`);
}

export function currentBackend(): BackendChoice {
  if (!chosen) throw new Error('internal: initBackend() was not called');
  return chosen;
}
