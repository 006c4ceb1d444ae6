// Original file: proto/advclip/v1/run.proto

import type { LoraSpec as _advclip_v1_LoraSpec, LoraSpec__Output as _advclip_v1_LoraSpec__Output } from '../../advclip/v1/LoraSpec.ts';
import type { Long } from '@grpc/proto-loader';

/**
 * Algorithm 1's settings (core/train-spec.ts TrainSpec).
 */
export interface TrainSpec {
  /**
   * advclip-lora or clip-lora (no ascent).
   */
  'method'?: (string);
  /**
   * Seed of every random draw (samples, augmentation, dropout, PGD starts).
   */
  'seed'?: (number | string | Long);
  'lora'?: (_advclip_v1_LoraSpec | null);
  /**
   * ℓ∞ radius of delta in [0,1] pixels.
   */
  'epsilon'?: (number | string);
  /**
   * Ascent steps on delta per step.
   */
  'tau'?: (number);
  /**
   * universal (one delta, carried) or per-sample (Madry PGD).
   */
  'perturbation'?: (string);
  /**
   * delta ascent rule: grad or sign.
   */
  'delta_step'?: (string);
  /**
   * delta step size η_δ; with delta_calibration first-gradient, the per-pixel
   * RMS length of the run's first step (η_δ follows from the first gradient).
   */
  'lr_delta'?: (number | string);
  /**
   * jacobi (A and B together) or gauss-seidel (A, then B at the new A).
   */
  'lora_update'?: (string);
  /**
   * adamw or sgd.
   */
  'optimizer'?: (string);
  /**
   * LoRA learning rate η_w.
   */
  'lr'?: (number | string);
  /**
   * cosine or constant.
   */
  'schedule'?: (string);
  'weight_decay'?: (number | string);
  /**
   * Optimiser steps of the run.
   */
  'iters'?: (number | string | Long);
  /**
   * Minibatch size M.
   */
  'batch_size'?: (number);
  /**
   * Samples per chunk: the unit of work and of deterministic reduction.
   */
  'chunk_size'?: (number);
  /**
   * crop-flip or none.
   */
  'augment'?: (string);
  /**
   * exact or local-delta.
   */
  'sync'?: (string);
  /**
   * Also compute the loss at delta = 0 (one more forward pass).
   */
  'clean_loss'?: (boolean);
  /**
   * Reset the universal delta at each epoch.
   */
  'reset_delta_each_epoch'?: (boolean);
  /**
   * How η_δ of grad steps is set: first-gradient (calibrated from the run's
   * first mean delta-gradient) or none (η_δ = lr_delta).
   */
  'delta_calibration'?: (string);
}

/**
 * Algorithm 1's settings (core/train-spec.ts TrainSpec).
 */
export interface TrainSpec__Output {
  /**
   * advclip-lora or clip-lora (no ascent).
   */
  'method': (string);
  /**
   * Seed of every random draw (samples, augmentation, dropout, PGD starts).
   */
  'seed': (number);
  'lora': (_advclip_v1_LoraSpec__Output | null);
  /**
   * ℓ∞ radius of delta in [0,1] pixels.
   */
  'epsilon': (number);
  /**
   * Ascent steps on delta per step.
   */
  'tau': (number);
  /**
   * universal (one delta, carried) or per-sample (Madry PGD).
   */
  'perturbation': (string);
  /**
   * delta ascent rule: grad or sign.
   */
  'delta_step': (string);
  /**
   * delta step size η_δ; with delta_calibration first-gradient, the per-pixel
   * RMS length of the run's first step (η_δ follows from the first gradient).
   */
  'lr_delta': (number);
  /**
   * jacobi (A and B together) or gauss-seidel (A, then B at the new A).
   */
  'lora_update': (string);
  /**
   * adamw or sgd.
   */
  'optimizer': (string);
  /**
   * LoRA learning rate η_w.
   */
  'lr': (number);
  /**
   * cosine or constant.
   */
  'schedule': (string);
  'weight_decay': (number);
  /**
   * Optimiser steps of the run.
   */
  'iters': (number);
  /**
   * Minibatch size M.
   */
  'batch_size': (number);
  /**
   * Samples per chunk: the unit of work and of deterministic reduction.
   */
  'chunk_size': (number);
  /**
   * crop-flip or none.
   */
  'augment': (string);
  /**
   * exact or local-delta.
   */
  'sync': (string);
  /**
   * Also compute the loss at delta = 0 (one more forward pass).
   */
  'clean_loss': (boolean);
  /**
   * Reset the universal delta at each epoch.
   */
  'reset_delta_each_epoch': (boolean);
  /**
   * How η_δ of grad steps is set: first-gradient (calibrated from the run's
   * first mean delta-gradient) or none (η_δ = lr_delta).
   */
  'delta_calibration': (string);
}
