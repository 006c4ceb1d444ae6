// Original file: proto/advclip/v1/task.proto

/**
 * What a round computes.
 */
export const RoundKind = {
  ROUND_KIND_UNSPECIFIED: 'ROUND_KIND_UNSPECIFIED',
  /**
   * One ascent round of exact mode: per chunk, sum over samples of dF/d(delta).
   */
  DELTA_GRAD: 'DELTA_GRAD',
  /**
   * The LoRA round: per chunk, sums of dF/dA and dF/dB at the task's delta.
   */
  LORA_GRAD: 'LORA_GRAD',
  /**
   * local-delta (federated) mode: the worker runs the tau ascent steps on
   * its own copy of delta, then returns LoRA gradient sums and its delta.
   */
  LOCAL_DELTA: 'LOCAL_DELTA',
  /**
   * Evaluation during training, at the task's adapter version without
   * dropout, under the run's evaluation attack (RunSpec.evaluation): chunks
   * hold positions in the run's class-balanced test subset; per chunk,
   * ChunkResult.correct and adv_loss_sum (the loss sum at the attacked input).
   */
  EVAL: 'EVAL',
  /**
   * The text-tower LoRA gradient of one step: the VJP of the class text
   * features T with G = sum over chunks of dF/dT (Task.text_grad). Its chunks
   * are groups of classes (sample_indices hold class indices), spread over
   * the workers; each chunk result carries its group's gradients.
   */
  TEXT_GRAD: 'TEXT_GRAD',
} as const;

/**
 * What a round computes.
 */
export type RoundKind =
  | 'ROUND_KIND_UNSPECIFIED'
  | 0
  /**
   * One ascent round of exact mode: per chunk, sum over samples of dF/d(delta).
   */
  | 'DELTA_GRAD'
  | 1
  /**
   * The LoRA round: per chunk, sums of dF/dA and dF/dB at the task's delta.
   */
  | 'LORA_GRAD'
  | 2
  /**
   * local-delta (federated) mode: the worker runs the tau ascent steps on
   * its own copy of delta, then returns LoRA gradient sums and its delta.
   */
  | 'LOCAL_DELTA'
  | 3
  /**
   * Evaluation during training, at the task's adapter version without
   * dropout, under the run's evaluation attack (RunSpec.evaluation): chunks
   * hold positions in the run's class-balanced test subset; per chunk,
   * ChunkResult.correct and adv_loss_sum (the loss sum at the attacked input).
   */
  | 'EVAL'
  | 4
  /**
   * The text-tower LoRA gradient of one step: the VJP of the class text
   * features T with G = sum over chunks of dF/dT (Task.text_grad). Its chunks
   * are groups of classes (sample_indices hold class indices), spread over
   * the workers; each chunk result carries its group's gradients.
   */
  | 'TEXT_GRAD'
  | 5

/**
 * What a round computes.
 */
export type RoundKind__Output = typeof RoundKind[keyof typeof RoundKind]
