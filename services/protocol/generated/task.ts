import type * as grpc from '@grpc/grpc-js';
import type { EnumTypeDefinition, MessageTypeDefinition } from '@grpc/proto-loader';

import type { Chunk as _advclip_v1_Chunk, Chunk__Output as _advclip_v1_Chunk__Output } from './advclip/v1/Chunk.ts';
import type { ChunkResult as _advclip_v1_ChunkResult, ChunkResult__Output as _advclip_v1_ChunkResult__Output } from './advclip/v1/ChunkResult.ts';
import type { NamedTensor as _advclip_v1_NamedTensor, NamedTensor__Output as _advclip_v1_NamedTensor__Output } from './advclip/v1/NamedTensor.ts';
import type { Seeds as _advclip_v1_Seeds, Seeds__Output as _advclip_v1_Seeds__Output } from './advclip/v1/Seeds.ts';
import type { Task as _advclip_v1_Task, Task__Output as _advclip_v1_Task__Output } from './advclip/v1/Task.ts';
import type { TaskError as _advclip_v1_TaskError, TaskError__Output as _advclip_v1_TaskError__Output } from './advclip/v1/TaskError.ts';
import type { TaskResult as _advclip_v1_TaskResult, TaskResult__Output as _advclip_v1_TaskResult__Output } from './advclip/v1/TaskResult.ts';
import type { Tensor as _advclip_v1_Tensor, Tensor__Output as _advclip_v1_Tensor__Output } from './advclip/v1/Tensor.ts';
import type { Timing as _advclip_v1_Timing, Timing__Output as _advclip_v1_Timing__Output } from './advclip/v1/Timing.ts';

type SubtypeConstructor<Constructor extends new (...args: any) => any, Subtype> = {
  new(...args: ConstructorParameters<Constructor>): Subtype;
};

export interface ProtoGrpcType {
  advclip: {
    v1: {
      Chunk: MessageTypeDefinition<_advclip_v1_Chunk, _advclip_v1_Chunk__Output>
      ChunkResult: MessageTypeDefinition<_advclip_v1_ChunkResult, _advclip_v1_ChunkResult__Output>
      NamedTensor: MessageTypeDefinition<_advclip_v1_NamedTensor, _advclip_v1_NamedTensor__Output>
      RoundKind: EnumTypeDefinition
      Seeds: MessageTypeDefinition<_advclip_v1_Seeds, _advclip_v1_Seeds__Output>
      Task: MessageTypeDefinition<_advclip_v1_Task, _advclip_v1_Task__Output>
      TaskError: MessageTypeDefinition<_advclip_v1_TaskError, _advclip_v1_TaskError__Output>
      TaskResult: MessageTypeDefinition<_advclip_v1_TaskResult, _advclip_v1_TaskResult__Output>
      Tensor: MessageTypeDefinition<_advclip_v1_Tensor, _advclip_v1_Tensor__Output>
      Timing: MessageTypeDefinition<_advclip_v1_Timing, _advclip_v1_Timing__Output>
    }
  }
}

