/**
 * The `native` backend: tfjs' wasm backend with its BatchMatMul kernel
 * replaced by oneDNN's (or OpenBLAS') sgemm from an N-API addon (native/, built by
 * scripts/build-native.mjs). Operands stay where the wasm backend keeps them:
 * the addon reads and writes the wasm heap in place, so nothing is copied and
 * every other kernel, the tensor bookkeeping and the gradients stay wasm's.
 * Transpose flags are passed to sgemm, so transposed products cost the same as
 * plain ones (wasm's own run ~10× slower).
 *
 * With the products fast, the next cost in a training step was wasm's
 * Identity, which copies its input: the engine clones every tensor it saves
 * for the backward pass (~20k clones per ViT-B/32 step). Tensors are
 * immutable, so the clone here shares the data and counts a reference, as
 * tfjs' cpu backend does.
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';

/** The addon's surface (native/src/advclip_native.cc). */
export interface NativeAddon {
  /** spec = [aOffset, bOffset, cOffset, m, n, k, transA, transB, rank, batchShape…, aStrides…, bStrides…] */
  gemm(heap: ArrayBuffer, spec: Float64Array): void;
  setThreads(n: number): void;
  threads(): number;
  info(): { readonly blas: string; readonly core: string; readonly threads: number };
}

export const nativeAddonPath = new URL('../../native/build/Release/advclip_native.node', import.meta.url);

/** Loads the addon; throws an Error that says why it is not there (not built, or OpenBLAS missing at run time). */
export function loadNativeAddon(): NativeAddon {
  try {
    return createRequire(import.meta.url)(fileURLToPath(nativeAddonPath)) as NativeAddon;
  } catch (err) {
    const why = err instanceof Error ? err.message.split('\n')[0] : String(err);
    const hint = /Cannot find module/.test(why)
      ? 'the addon is not built (needs libdnnl-dev or libopenblas-dev, g++, make, python3; then `node scripts/build-native.mjs`)'
      : `the addon does not load (${why})`;
    throw new Error(hint);
  }
}

/** What the wasm backend keeps per tensor and exposes to kernels (tfjs-backend-wasm's BackendWasm). */
interface WasmBackend {
  readonly wasm: { readonly HEAPU8: Uint8Array };
  readonly dataIdMap: { get(dataId: object): { memoryOffset: number } };
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  incRef(dataId: object): void;
}

/** Element strides of each output batch dim in an operand's batch dims (right-aligned; 0 where it broadcasts). */
function broadcastStrides(operand: readonly number[], out: readonly number[], matrixSize: number): number[] {
  const strides = new Array<number>(out.length).fill(0);
  let stride = matrixSize;
  for (let i = 1; i <= operand.length; i++) {
    const dim = operand[operand.length - i];
    if (dim !== 1) strides[out.length - i] = stride;
    stride *= dim;
  }
  return strides;
}

function nativeBatchMatMul(addon: NativeAddon): tf.KernelFunc {
  return ({ inputs, backend, attrs }) => {
    const { a, b } = inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
    const { transposeA, transposeB } = attrs as unknown as { transposeA: boolean; transposeB: boolean };
    if (a.dtype !== 'float32' || b.dtype !== 'float32') throw new Error('BatchMatMul (native): float32 operands only');
    const wasm = backend as unknown as WasmBackend;
    const ra = a.shape.length;
    const rb = b.shape.length;
    const m = transposeA ? a.shape[ra - 1] : a.shape[ra - 2];
    const k = transposeA ? a.shape[ra - 2] : a.shape[ra - 1];
    const kb = transposeB ? b.shape[rb - 1] : b.shape[rb - 2];
    const n = transposeB ? b.shape[rb - 2] : b.shape[rb - 1];
    if (k !== kb) throw new Error(`Error in matMul: inner shapes (${k}) and (${kb}) of Tensors with shapes ${a.shape} and ${b.shape} and transposeA=${transposeA} and transposeB=${transposeB} must match.`);
    const aBatch = a.shape.slice(0, -2);
    const bBatch = b.shape.slice(0, -2);
    const batch = tf.broadcast_util.assertAndGetBroadcastShape(aBatch, bBatch);
    const out = wasm.makeOutput([...batch, m, n], 'float32');
    // offsets after makeOutput: its malloc may grow (and replace) the heap's buffer
    const spec = new Float64Array(9 + 3 * batch.length);
    spec.set([wasm.dataIdMap.get(a.dataId).memoryOffset, wasm.dataIdMap.get(b.dataId).memoryOffset, wasm.dataIdMap.get(out.dataId).memoryOffset, m, n, k, transposeA ? 1 : 0, transposeB ? 1 : 0, batch.length]);
    spec.set(batch, 9);
    spec.set(broadcastStrides(aBatch, batch, m * k), 9 + batch.length);
    spec.set(broadcastStrides(bBatch, batch, k * n), 9 + 2 * batch.length);
    addon.gemm(wasm.wasm.HEAPU8.buffer as ArrayBuffer, spec);
    return out;
  };
}

const sharedIdentity: tf.KernelFunc = ({ inputs, backend }) => {
  const { x } = inputs as { x: tf.TensorInfo };
  (backend as unknown as WasmBackend).incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
};

/**
 * Replaces the wasm backend's BatchMatMul with the native one and its Identity
 * with a sharing one (call after the wasm backend is initialised). Returns a
 * function that puts wasm's own back. tf.matMul never routes to _FusedMatMul
 * (only tf.fused.matMul and converted graph models do), so that stays wasm's.
 */
export function installNativeKernels(addon: NativeAddon): () => void {
  const replacements: tf.KernelConfig[] = [
    { kernelName: tf.BatchMatMul, backendName: 'wasm', kernelFunc: nativeBatchMatMul(addon) },
    { kernelName: tf.Identity, backendName: 'wasm', kernelFunc: sharedIdentity },
  ];
  const originals = replacements.map((k) => {
    const original = tf.getKernel(k.kernelName, 'wasm');
    if (!original) throw new Error(`native: the wasm backend has no ${k.kernelName} kernel to replace`);
    return original;
  });
  for (const k of replacements) {
    tf.unregisterKernel(k.kernelName, 'wasm');
    tf.registerKernel(k);
  }
  return () => {
    for (const k of originals) {
      tf.unregisterKernel(k.kernelName, 'wasm');
      tf.registerKernel(k);
    }
  };
}
