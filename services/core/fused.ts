/**
 * Fused kernels a backend may provide for the CLIP block: quick_gelu and
 * LayerNorm as one kernel each, with their gradients as kernels too. Only the
 * native backend registers them (native-kernels.ts); layers.ts asks
 * `hasFusedKernel` and otherwise composes the same math from tfjs ops, so
 * TensorFlow (CPU/GPU), wasm and cpu run the code they always ran.
 *
 * The gradients are registered here, once, for every backend: they only run
 * where the forward kernel did.
 */
import * as tf from '@tensorflow/tfjs';

export const FusedKernel = {
  quickGelu: 'AdvclipQuickGelu',
  quickGeluGrad: 'AdvclipQuickGeluGrad',
  layerNorm: 'AdvclipLayerNorm',
  layerNormGrad: 'AdvclipLayerNormGrad',
  layerNormGammaGrad: 'AdvclipLayerNormGammaGrad',
} as const;

export interface LayerNormAttrs {
  readonly eps: number;
}

/** True when the active backend has `kernelName` registered. */
export const hasFusedKernel = (kernelName: string): boolean => tf.getKernel(kernelName, tf.getBackend()) !== undefined;

const run = (kernelName: string, inputs: tf.NamedTensorMap, attrs: LayerNormAttrs | Record<string, never> = {}): tf.Tensor =>
  tf.engine().runKernel(kernelName, inputs, attrs as unknown as tf.NamedAttrMap) as tf.Tensor;

/** x·σ(1.702x) in one kernel. */
export const fusedQuickGelu = (x: tf.Tensor): tf.Tensor => run(FusedKernel.quickGelu, { x });

/** LayerNorm over the last axis in one kernel (gamma, beta: [width]). */
export const fusedLayerNorm = (x: tf.Tensor, gamma: tf.Tensor1D, beta: tf.Tensor1D, eps: number): tf.Tensor =>
  run(FusedKernel.layerNorm, { x, gamma, beta }, { eps });

tf.registerGradient({
  kernelName: FusedKernel.quickGelu,
  inputsToSave: ['x'],
  gradFunc: (dy, saved) => ({ x: () => run(FusedKernel.quickGeluGrad, { x: saved[0], dy: dy as tf.Tensor }) }),
});

tf.registerGradient({
  kernelName: FusedKernel.layerNorm,
  inputsToSave: ['x', 'gamma'],
  gradFunc: (dy, saved, attrs) => {
    const [x, gamma] = saved;
    const g = dy as tf.Tensor;
    const { eps } = attrs as unknown as LayerNormAttrs;
    const rows = (t: tf.Tensor) => tf.reshape(t, [-1, gamma.shape[0]]);
    // gamma and beta are asked for only where they are trained (pretraining)
    return {
      x: () => run(FusedKernel.layerNormGrad, { x, gamma, dy: g }, { eps }),
      gamma: () => run(FusedKernel.layerNormGammaGrad, { x, dy: g }, { eps }),
      beta: () => tf.sum(rows(g), 0),
    };
  },
});
