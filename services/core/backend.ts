/**
 * Picks the tfjs compute backend once per process: native TensorFlow with CUDA,
 * native TensorFlow on CPU, WebAssembly (SIMD), then plain JS. The native
 * packages are optional dependencies (their install downloads libtensorflow),
 * so each is tried with a dynamic import and skipped when it is not there.
 */
import * as tf from '@tensorflow/tfjs';
import { invalidArgument } from './errors.ts';

export const BackendNames = ['auto', 'node-gpu', 'node', 'wasm', 'cpu'] as const;
export type BackendName = (typeof BackendNames)[number];

export interface BackendChoice {
  /** what we asked for and got, in our names */
  readonly name: Exclude<BackendName, 'auto'>;
  /** tfjs' own backend name (`tensorflow`, `wasm`, `cpu`) */
  readonly tfName: string;
  /** why the ones before it were skipped */
  readonly skipped: readonly string[];
}

const order: readonly Exclude<BackendName, 'auto'>[] = ['node-gpu', 'node', 'wasm', 'cpu'];

async function tryBackend(name: Exclude<BackendName, 'auto'>): Promise<string> {
  switch (name) {
    case 'node-gpu':
      await import('@tensorflow/tfjs-node-gpu' as string);
      return 'tensorflow';
    case 'node':
      await import('@tensorflow/tfjs-node' as string);
      return 'tensorflow';
    case 'wasm':
      await import('@tensorflow/tfjs-backend-wasm');
      return 'wasm';
    case 'cpu':
      return 'cpu';
  }
}

export function parseBackendName(value: string): BackendName {
  if ((BackendNames as readonly string[]).includes(value)) return value as BackendName;
  throw invalidArgument(`unknown backend "${value}": expected one of ${BackendNames.join(', ')}`);
}

let chosen: BackendChoice | null = null;

/** Initialises the backend (idempotent: the first choice in a process stands). */
export async function initBackend(preference: BackendName = 'auto'): Promise<BackendChoice> {
  if (chosen) return chosen;
  const candidates = preference === 'auto' ? order : [preference];
  const skipped: string[] = [];
  for (const name of candidates) {
    try {
      const tfName = await tryBackend(name);
      if (!(await tf.setBackend(tfName))) throw new Error(`tf.setBackend('${tfName}') refused`);
      await tf.ready();
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
