/**
 * Optimisers on host vectors (the coordinator owns them; LoRA has few
 * parameters). AdamW as torch.optim.AdamW (decoupled decay, bias-corrected
 * moments); SGD is plain: no momentum, no weight decay, as the paper's analysis.
 */
import type { OptimizerName, Schedule } from './train-spec.ts';

export interface OptimizerState {
  readonly name: OptimizerName;
  /** first and second moments (AdamW), one pair per parameter tensor */
  readonly m: Float32Array[];
  readonly v: Float32Array[];
}

export const AdamW = { beta1: 0.9, beta2: 0.999, eps: 1e-8 } as const;

export function initOptimizer(name: OptimizerName, sizes: readonly number[]): OptimizerState {
  const moments = () => (name === 'adamw' ? sizes.map((n) => new Float32Array(n)) : []);
  return { name, m: moments(), v: moments() };
}

export interface UpdateOptions {
  readonly lr: number;
  readonly weightDecay: number;
  /** the optimiser step, from 1 (AdamW's bias correction) */
  readonly t: number;
  /** indices of the tensors to update (Gauss–Seidel updates A and B apart) */
  readonly which: readonly number[];
}

/** Updates params[i] in place from grads[i] (means, not sums). */
export function applyUpdate(state: OptimizerState, params: Float32Array[], grads: readonly Float32Array[], opts: UpdateOptions): void {
  const { lr, weightDecay, t, which } = opts;
  if (state.name === 'sgd') {
    for (const i of which) {
      const p = params[i];
      const g = grads[i];
      for (let j = 0; j < p.length; j++) p[j] -= lr * g[j];
    }
    return;
  }
  const { beta1, beta2, eps } = AdamW;
  const c1 = 1 - beta1 ** t;
  const c2 = 1 - beta2 ** t;
  for (const i of which) {
    const p = params[i];
    const g = grads[i];
    const m = state.m[i];
    const v = state.v[i];
    for (let j = 0; j < p.length; j++) {
      p[j] *= 1 - lr * weightDecay;
      m[j] = beta1 * m[j] + (1 - beta1) * g[j];
      v[j] = beta2 * v[j] + (1 - beta2) * g[j] * g[j];
      p[j] -= (lr * (m[j] / c1)) / (Math.sqrt(v[j] / c2) + eps);
    }
  }
}

export const FINAL_LR = 1e-6;

/** lr at step t of T: cosine from lr at the first step to 1e-6 at the last, or constant. */
export function learningRate(schedule: Schedule, lr: number, t: number, total: number): number {
  if (schedule === 'constant' || total <= 1) return lr;
  return FINAL_LR + ((lr - FINAL_LR) * (1 + Math.cos((Math.PI * t) / (total - 1)))) / 2;
}
