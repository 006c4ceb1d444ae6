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
 * tfjs' cpu backend does; a Cast to the dtype a tensor already has likewise.
 *
 * Then the element-wise passes of quick_gelu and LayerNorm (3–9 wasm kernels
 * each, forward and backward, one thread): the addon has them fused and
 * threaded, registered as fused.ts' kernels, which layers.ts uses where the
 * backend has them.
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { FusedKernel, type LayerNormAttrs } from './fused.ts';

/** The addon's surface (native/src/advclip_native.cc). */
export interface NativeAddon {
  /** spec = [aOffset, bOffset, cOffset, m, n, k, transA, transB, rank, batchShape…, aStrides…, bStrides…] */
  gemm(heap: ArrayBuffer, spec: Float64Array): void;
  /** fused kernels (native/src/fused.h); offsets in bytes */
  quickGelu(heap: ArrayBuffer, spec: Float64Array): void;
  quickGeluGrad(heap: ArrayBuffer, spec: Float64Array): void;
  layerNorm(heap: ArrayBuffer, spec: Float64Array): void;
  layerNormGrad(heap: ArrayBuffer, spec: Float64Array): void;
  layerNormGammaGrad(heap: ArrayBuffer, spec: Float64Array): void;
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

/** Cast to the dtype it already has shares the data as Identity does (tfjs' gradients cast a lot: ~4k per ViT-B/32 step); other casts stay wasm's. */
function sharedCast(wasmCast: tf.KernelFunc): tf.KernelFunc {
  return (args) => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    return x.dtype === (args.attrs as { dtype?: tf.DataType }).dtype ? sharedIdentity(args) : wasmCast(args);
  };
}

/**
 * A fused kernel over float32 tensors on the wasm heap: `outputShape` of the
 * inputs gives the output, `spec` the numbers after the input and output
 * offsets (the addon's spec layout, native/src/advclip_native.cc).
 */
function fusedKernel(
  name: string,
  call: (heap: ArrayBuffer, spec: Float64Array) => void,
  outputShape: (inputs: tf.TensorInfo[]) => number[],
  tail: (inputs: tf.TensorInfo[], attrs: LayerNormAttrs) => number[],
  order: readonly string[],
): tf.KernelConfig {
  return {
    kernelName: name,
    backendName: 'wasm',
    kernelFunc: ({ inputs, backend, attrs }) => {
      const wasm = backend as unknown as WasmBackend;
      const operands = order.map((k) => (inputs as Record<string, tf.TensorInfo>)[k]);
      if (operands.some((t) => t.dtype !== 'float32')) throw new Error(`${name} (native): float32 operands only`);
      const out = wasm.makeOutput(outputShape(operands), 'float32');
      // offsets after makeOutput: its malloc may grow (and replace) the heap's buffer
      const offsets = [...operands, out].map((t) => wasm.dataIdMap.get(t.dataId).memoryOffset);
      call(wasm.wasm.HEAPU8.buffer as ArrayBuffer, Float64Array.from([...offsets, ...tail(operands, attrs as unknown as LayerNormAttrs)]));
      return out;
    },
  };
}

const sizeOf = (t: tf.TensorInfo) => t.shape.reduce((a, b) => a * b, 1);
/** rows, width, eps of a LayerNorm over x's last axis */
const rowsWidthEps = (x: tf.TensorInfo, attrs: LayerNormAttrs) => {
  const width = x.shape[x.shape.length - 1];
  return [width === 0 ? 0 : sizeOf(x) / width, width, attrs.eps];
};

function fusedKernels(addon: NativeAddon): tf.KernelConfig[] {
  const sameAsFirst = (inputs: tf.TensorInfo[]) => [...inputs[0].shape];
  return [
    fusedKernel(FusedKernel.quickGelu, addon.quickGelu, sameAsFirst, ([x]) => [sizeOf(x)], ['x']),
    fusedKernel(FusedKernel.quickGeluGrad, addon.quickGeluGrad, sameAsFirst, ([x]) => [sizeOf(x)], ['x', 'dy']),
    fusedKernel(FusedKernel.layerNorm, addon.layerNorm, sameAsFirst, ([x], attrs) => rowsWidthEps(x, attrs), ['x', 'gamma', 'beta']),
    fusedKernel(FusedKernel.layerNormGrad, addon.layerNormGrad, sameAsFirst, ([x], attrs) => rowsWidthEps(x, attrs), ['x', 'gamma', 'dy']),
    fusedKernel(FusedKernel.layerNormGammaGrad, addon.layerNormGammaGrad, ([x]) => [x.shape[x.shape.length - 1]], ([x], attrs) => rowsWidthEps(x, attrs), ['x', 'dy']),
  ];
}

/**
 * Replaces the wasm backend's BatchMatMul with the native one, its Identity
 * and same-dtype Cast with sharing ones, and adds the fused kernels
 * (fused.ts); call after the wasm backend is initialised. Returns a function
 * that puts wasm's own back. tf.matMul never routes to _FusedMatMul (only
 * tf.fused.matMul and converted graph models do), so that stays wasm's.
 */
export function installNativeKernels(addon: NativeAddon): () => void {
  const wasmKernel = (name: string) => {
    const kernel = tf.getKernel(name, 'wasm');
    if (!kernel) throw new Error(`native: the wasm backend has no ${name} kernel to replace`);
    return kernel;
  };
  const replacements: tf.KernelConfig[] = [
    { kernelName: tf.BatchMatMul, backendName: 'wasm', kernelFunc: nativeBatchMatMul(addon) },
    { kernelName: tf.Identity, backendName: 'wasm', kernelFunc: sharedIdentity },
    { kernelName: tf.Cast, backendName: 'wasm', kernelFunc: sharedCast(wasmKernel(tf.Cast).kernelFunc) },
  ];
  const originals = replacements.map((k) => wasmKernel(k.kernelName));
  const added = fusedKernels(addon);
  for (const k of replacements) tf.unregisterKernel(k.kernelName, 'wasm');
  for (const k of [...replacements, ...added]) tf.registerKernel(k);
  return () => {
    for (const k of [...replacements, ...added]) tf.unregisterKernel(k.kernelName, 'wasm');
    for (const k of originals) tf.registerKernel(k);
  };
}
