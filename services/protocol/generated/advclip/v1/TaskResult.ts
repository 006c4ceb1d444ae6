// Original file: proto/advclip/v1/task.proto

import type { ChunkResult as _advclip_v1_ChunkResult, ChunkResult__Output as _advclip_v1_ChunkResult__Output } from '../../advclip/v1/ChunkResult.ts';
import type { Timing as _advclip_v1_Timing, Timing__Output as _advclip_v1_Timing__Output } from '../../advclip/v1/Timing.ts';
import type { NamedTensor as _advclip_v1_NamedTensor, NamedTensor__Output as _advclip_v1_NamedTensor__Output } from '../../advclip/v1/NamedTensor.ts';
import type { Long } from '@grpc/proto-loader';

export interface TaskResult {
  'task_id'?: (string);
  'step'?: (number | string | Long);
  'round'?: (number);
  /**
   * One entry per assigned chunk.
   */
  'chunks'?: (_advclip_v1_ChunkResult)[];
  'timing'?: (_advclip_v1_Timing | null);
  /**
   * Per-task (not per-chunk) tensors: LOCAL_DELTA returns the worker's
   * final delta here as "delta", weighted by the summed chunk counts.
   */
  'shard_tensors'?: (_advclip_v1_NamedTensor)[];
}

export interface TaskResult__Output {
  'task_id': (string);
  'step': (number);
  'round': (number);
  /**
   * One entry per assigned chunk.
   */
  'chunks': (_advclip_v1_ChunkResult__Output)[];
  'timing': (_advclip_v1_Timing__Output | null);
  /**
   * Per-task (not per-chunk) tensors: LOCAL_DELTA returns the worker's
   * final delta here as "delta", weighted by the summed chunk counts.
   */
  'shard_tensors': (_advclip_v1_NamedTensor__Output)[];
}
