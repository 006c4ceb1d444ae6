/**
 * One contrastive step: forward both towers on a batch, symmetric InfoNCE,
 * gradients of every weight, AdamW, then logit_scale clamped to ln 100 as
 * CLIP does. Every tensor made here is disposed before returning.
 */
import * as tf from '@tensorflow/tfjs';
import type { ClipModel } from '../../services/core/clip.ts';
import type { AdamWVariables } from './adamw.ts';
import type { PretrainBatch } from './batches.ts';
import { symmetricInfoNce } from './loss.ts';

export const MAX_LOGIT_SCALE = Math.log(100);

export interface StepResult {
  readonly loss: number;
  /** exp(logit_scale) after the update */
  readonly temperatureInverse: number;
}

export function batchLoss(model: ClipModel, batch: PretrainBatch): tf.Scalar {
  const images = model.encodeImages(tf.tensor4d(batch.pixels, batch.shape)); // [B, P]
  const texts = model.encodeTexts(batch.tokens); // [B, P]
  return symmetricInfoNce(model.logits(images, texts));
}

export function trainStep(model: ClipModel, optimiser: AdamWVariables, batch: PretrainBatch, lr: number): StepResult {
  const variables = model.variables();
  const scale = model.logitScaleVariable;
  if (!scale) throw new Error('trainStep: the model was not built with trainable: true');
  const loss = tf.tidy(() => {
    const { value, grads } = tf.variableGrads(() => batchLoss(model, batch), variables);
    optimiser.step(variables.map((v) => grads[v.name]), lr);
    scale.assign(tf.clipByValue(scale, 0, MAX_LOGIT_SCALE));
    return value;
  });
  const value = loss.dataSync()[0];
  loss.dispose();
  return { loss: value, temperatureInverse: Math.exp(scale.dataSync()[0]) };
}
