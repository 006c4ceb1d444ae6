// Original file: proto/advclip/v1/task.proto

import type { NamedTensor as _advclip_v1_NamedTensor, NamedTensor__Output as _advclip_v1_NamedTensor__Output } from '../../advclip/v1/NamedTensor.ts';

/**
 * Sums over one chunk's samples.
 */
export interface ChunkResult {
  'chunk_index'?: (number);
  /**
   * Number of samples summed (the chunk's size).
   */
  'count'?: (number);
  /**
   * Sum of per-sample cross-entropy at delta = 0 (NaN when the run does not
   * compute it, or for rounds without a LoRA forward pass).
   */
  'clean_loss_sum'?: (number | string);
  /**
   * Sum of per-sample cross-entropy at the perturbed input (the adversarial
   * loss the step minimises; for EVAL, at the input the evaluation attack made).
   */
  'adv_loss_sum'?: (number | string);
  /**
   * Gradient SUMS over the chunk: "delta" for DELTA_GRAD; for LORA_GRAD /
   * LOCAL_DELTA one entry "<site>.A" / "<site>.B" per image-tower LoRA
   * factor (site = HF module path) and "text_features" (dF/dT); for TEXT_GRAD
   * "<site>.A" / "<site>.B" of every text-tower factor; empty for EVAL.
   */
  'grads'?: (_advclip_v1_NamedTensor)[];
  /**
   * EVAL: number of correct predictions in the chunk (at most count); 0 otherwise.
   */
  'correct'?: (number);
}

/**
 * Sums over one chunk's samples.
 */
export interface ChunkResult__Output {
  'chunk_index': (number);
  /**
   * Number of samples summed (the chunk's size).
   */
  'count': (number);
  /**
   * Sum of per-sample cross-entropy at delta = 0 (NaN when the run does not
   * compute it, or for rounds without a LoRA forward pass).
   */
  'clean_loss_sum': (number);
  /**
   * Sum of per-sample cross-entropy at the perturbed input (the adversarial
   * loss the step minimises; for EVAL, at the input the evaluation attack made).
   */
  'adv_loss_sum': (number);
  /**
   * Gradient SUMS over the chunk: "delta" for DELTA_GRAD; for LORA_GRAD /
   * LOCAL_DELTA one entry "<site>.A" / "<site>.B" per image-tower LoRA
   * factor (site = HF module path) and "text_features" (dF/dT); for TEXT_GRAD
   * "<site>.A" / "<site>.B" of every text-tower factor; empty for EVAL.
   */
  'grads': (_advclip_v1_NamedTensor__Output)[];
  /**
   * EVAL: number of correct predictions in the chunk (at most count); 0 otherwise.
   */
  'correct': (number);
}
