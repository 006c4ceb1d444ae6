/**
 * Transformer building blocks shared by both CLIP towers.
 *
 * The matrix products have hand-written gradients: tfjs' own gradient of
 * `matMul` uses transposed operands, which the wasm backend runs about ten
 * times slower than plain products. With `explicitTranspose` on, every
 * backward product is a plain one on explicitly transposed operands; the
 * frozen weight's gradient product is taken as (W0ᵀ·dyᵀ)ᵀ so the weight is
 * stored (and packed by XNNPACK) once, in one orientation — the wasm heap
 * is capped at 4 GB. Native backends keep tfjs' own gradients.
 */
import * as tf from '@tensorflow/tfjs';
import { FusedKernel, fusedLayerNorm, fusedQuickGelu, hasFusedKernel } from './fused.ts';

/** A linear layer y = x·W0ᵀ + b (frozen when fine-tuning, trainable when pretraining). */
export interface FrozenLinear {
  /** W0ᵀ: [in, out] */
  readonly w: tf.Tensor2D;
  readonly bias: tf.Tensor1D | null;
  /** take gradients with plain products (wasm/cpu) */
  readonly explicitTranspose: boolean;
  /** also give gradients w.r.t. w and bias (pretraining) */
  readonly trainable: boolean;
}

/** x: [N, in] → [N, out]; gradient w.r.t. x, and w.r.t. the weights when trainable. */
export function frozenLinear(x: tf.Tensor2D, layer: FrozenLinear): tf.Tensor2D {
  const { w, bias } = layer;
  if (!layer.explicitTranspose) {
    const y = tf.matMul(x, w) as tf.Tensor2D;
    return bias ? (tf.add(y, bias) as tf.Tensor2D) : y;
  }
  if (layer.trainable) return trainableLinear(x, w, bias);
  const op = tf.customGrad(((xIn: tf.Tensor) => {
    const y = tf.matMul(xIn as tf.Tensor2D, w);
    // dx = dy·W0 = (W0ᵀ·dyᵀ)ᵀ
    return { value: bias ? tf.add(y, bias) : y, gradFunc: (dy: tf.Tensor) => [tf.transpose(tf.matMul(w, tf.transpose(dy)))] };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return op(x) as tf.Tensor2D;
}

function trainableLinear(x: tf.Tensor2D, w: tf.Tensor2D, bias: tf.Tensor1D | null): tf.Tensor2D {
  const op = tf.customGrad(((xIn: tf.Tensor, wIn: tf.Tensor, bIn: tf.Tensor, save: tf.GradSaveFunc) => {
    save([xIn, wIn]);
    return {
      value: tf.add(tf.matMul(xIn as tf.Tensor2D, wIn as tf.Tensor2D), bIn),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sx, sw] = saved;
        return [tf.transpose(tf.matMul(sw, tf.transpose(dy))), tf.matMul(tf.transpose(sx), dy), tf.sum(dy, 0)];
      },
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return op(x, w, bias ?? tf.zeros([w.shape[1]])) as tf.Tensor2D;
}

function swapLast2(t: tf.Tensor): tf.Tensor {
  const perm = t.shape.map((_, i) => i);
  const n = perm.length;
  [perm[n - 2], perm[n - 1]] = [perm[n - 1], perm[n - 2]];
  return tf.transpose(t, perm);
}

/** Batched product a·b over leading dims ([..., m, k]·[..., k, n]) with plain-product gradients. */
export function matMulPlain<T extends tf.Tensor>(a: T, b: T, explicitTranspose: boolean): T {
  if (!explicitTranspose) return tf.matMul(a, b) as T;
  const op = tf.customGrad(((aIn: tf.Tensor, bIn: tf.Tensor, save: tf.GradSaveFunc) => {
    save([aIn, bIn]);
    return {
      value: tf.matMul(aIn, bIn),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sa, sb] = saved;
        return [tf.matMul(dy, swapLast2(sb)), tf.matMul(swapLast2(sa), dy)];
      },
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return op(a, b) as T;
}

/** LayerNorm over the last axis, as torch.nn.LayerNorm (one kernel where the backend has it). */
export function layerNorm(x: tf.Tensor, gamma: tf.Tensor1D, beta: tf.Tensor1D, eps: number): tf.Tensor {
  if (hasFusedKernel(FusedKernel.layerNorm)) return fusedLayerNorm(x, gamma, beta, eps);
  const { mean, variance } = tf.moments(x, -1, true);
  return tf.add(tf.mul(tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, eps))), gamma), beta);
}

/** quick_gelu(x) = x·σ(1.702x), OpenAI CLIP's activation (one kernel where the backend has it). */
export const quickGelu = (x: tf.Tensor): tf.Tensor =>
  hasFusedKernel(FusedKernel.quickGelu) ? fusedQuickGelu(x) : tf.mul(x, tf.sigmoid(tf.mul(x, 1.702)));

/** exact (erf) GELU, for checkpoints with hidden_act "gelu". */
export function gelu(x: tf.Tensor): tf.Tensor {
  return tf.mul(tf.mul(x, 0.5), tf.add(1, tf.erf(tf.div(x, Math.SQRT2))));
}
