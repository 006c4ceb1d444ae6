// Original file: proto/advclip/v1/task.proto

import type { RoundKind as _advclip_v1_RoundKind, RoundKind__Output as _advclip_v1_RoundKind__Output } from '../../advclip/v1/RoundKind.ts';
import type { Tensor as _advclip_v1_Tensor, Tensor__Output as _advclip_v1_Tensor__Output } from '../../advclip/v1/Tensor.ts';
import type { Chunk as _advclip_v1_Chunk, Chunk__Output as _advclip_v1_Chunk__Output } from '../../advclip/v1/Chunk.ts';
import type { Seeds as _advclip_v1_Seeds, Seeds__Output as _advclip_v1_Seeds__Output } from '../../advclip/v1/Seeds.ts';
import type { Long } from '@grpc/proto-loader';

export interface Task {
  /**
   * Unique per (step, round, assignment); echoed in the result.
   */
  'task_id'?: (string);
  /**
   * Training step t (0-based, as the step driver counts) the task belongs to.
   */
  'step'?: (number | string | Long);
  /**
   * Round within the step (0-based); a result for another round is stale.
   */
  'round'?: (number);
  'round_kind'?: (_advclip_v1_RoundKind);
  /**
   * Adapter (LoRA A, B) version to compute at, and its SHA-256 (hex) so the
   * worker can verify the blob it holds or fetches.
   */
  'adapter_version'?: (number | string | Long);
  'adapter_sha256'?: (string);
  /**
   * The universal perturbation delta [S, S, 3], inline. Unset in per-sample
   * mode and for TEXT_GRAD.
   */
  'delta'?: (_advclip_v1_Tensor | null);
  /**
   * Whole chunks assigned to this worker, in any order.
   */
  'chunks'?: (_advclip_v1_Chunk)[];
  'seeds'?: (_advclip_v1_Seeds | null);
  /**
   * The coordinator stops waiting for this task after this many ms and
   * reassigns its chunks; a later answer is discarded.
   */
  'deadline_ms'?: (number);
  /**
   * TEXT_GRAD: G = sum over the step's chunks of dF/dT, shape
   * [classes, projection_dim]. Unset for other kinds.
   */
  'text_grad'?: (_advclip_v1_Tensor | null);
  /**
   * The run the task belongs to: empty for the run the worker was given at
   * Register; a sweep's coordinator names one of its runs (GetRun).
   */
  'run_id'?: (string);
}

export interface Task__Output {
  /**
   * Unique per (step, round, assignment); echoed in the result.
   */
  'task_id': (string);
  /**
   * Training step t (0-based, as the step driver counts) the task belongs to.
   */
  'step': (number);
  /**
   * Round within the step (0-based); a result for another round is stale.
   */
  'round': (number);
  'round_kind': (_advclip_v1_RoundKind__Output);
  /**
   * Adapter (LoRA A, B) version to compute at, and its SHA-256 (hex) so the
   * worker can verify the blob it holds or fetches.
   */
  'adapter_version': (number);
  'adapter_sha256': (string);
  /**
   * The universal perturbation delta [S, S, 3], inline. Unset in per-sample
   * mode and for TEXT_GRAD.
   */
  'delta': (_advclip_v1_Tensor__Output | null);
  /**
   * Whole chunks assigned to this worker, in any order.
   */
  'chunks': (_advclip_v1_Chunk__Output)[];
  'seeds': (_advclip_v1_Seeds__Output | null);
  /**
   * The coordinator stops waiting for this task after this many ms and
   * reassigns its chunks; a later answer is discarded.
   */
  'deadline_ms': (number);
  /**
   * TEXT_GRAD: G = sum over the step's chunks of dF/dT, shape
   * [classes, projection_dim]. Unset for other kinds.
   */
  'text_grad': (_advclip_v1_Tensor__Output | null);
  /**
   * The run the task belongs to: empty for the run the worker was given at
   * Register; a sweep's coordinator names one of its runs (GetRun).
   */
  'run_id': (string);
}
