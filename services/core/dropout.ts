/**
 * LoRA dropout masks that any process can rebuild: the mask of a row group
 * (one image, or one class prompt) at one adapted layer is drawn from a
 * stream keyed by the group's words (e.g. seed, step, round, sample index)
 * and the layer's name. Values are 0 or 1/(1−p), as torch.nn.Dropout.
 */
import * as tf from '@tensorflow/tfjs';
import { RandomStream, wordOf } from './rng.ts';

export interface DropoutPlan {
  readonly p: number;
  /** key words of each row group, in row order (e.g. [purpose, seed, step, round, sampleIndex]) */
  readonly groups: readonly (readonly number[])[];
}

/** mask [groups·rowsPerGroup, inDim] for one adapted layer */
export function dropoutMask(plan: DropoutPlan, siteKey: string, rowsPerGroup: number, inDim: number): tf.Tensor2D {
  const keep = 1 - plan.p;
  const threshold = Math.floor(plan.p * 4294967296);
  const scale = 1 / keep;
  const site = wordOf(siteKey);
  const perGroup = rowsPerGroup * inDim;
  const data = new Float32Array(plan.groups.length * perGroup);
  plan.groups.forEach((words, g) => {
    const rng = RandomStream.of(...words, site);
    const offset = g * perGroup;
    for (let i = 0; i < perGroup; i++) data[offset + i] = rng.nextU32() >= threshold ? scale : 0;
  });
  return tf.tensor2d(data, [plan.groups.length * rowsPerGroup, inDim]);
}
