import type * as grpc from '@grpc/grpc-js';
import type { EnumTypeDefinition, MessageTypeDefinition } from '@grpc/proto-loader';

import type { AdapterBlob as _advclip_v1_AdapterBlob, AdapterBlob__Output as _advclip_v1_AdapterBlob__Output } from './advclip/v1/AdapterBlob.ts';
import type { AdapterRequest as _advclip_v1_AdapterRequest, AdapterRequest__Output as _advclip_v1_AdapterRequest__Output } from './advclip/v1/AdapterRequest.ts';
import type { AdapterVersion as _advclip_v1_AdapterVersion, AdapterVersion__Output as _advclip_v1_AdapterVersion__Output } from './advclip/v1/AdapterVersion.ts';
import type { Chunk as _advclip_v1_Chunk, Chunk__Output as _advclip_v1_Chunk__Output } from './advclip/v1/Chunk.ts';
import type { ChunkResult as _advclip_v1_ChunkResult, ChunkResult__Output as _advclip_v1_ChunkResult__Output } from './advclip/v1/ChunkResult.ts';
import type { CoordinatorClient as _advclip_v1_CoordinatorClient, CoordinatorDefinition as _advclip_v1_CoordinatorDefinition } from './advclip/v1/Coordinator.ts';
import type { CoordinatorMessage as _advclip_v1_CoordinatorMessage, CoordinatorMessage__Output as _advclip_v1_CoordinatorMessage__Output } from './advclip/v1/CoordinatorMessage.ts';
import type { Drain as _advclip_v1_Drain, Drain__Output as _advclip_v1_Drain__Output } from './advclip/v1/Drain.ts';
import type { EvaluationSpec as _advclip_v1_EvaluationSpec, EvaluationSpec__Output as _advclip_v1_EvaluationSpec__Output } from './advclip/v1/EvaluationSpec.ts';
import type { Heartbeat as _advclip_v1_Heartbeat, Heartbeat__Output as _advclip_v1_Heartbeat__Output } from './advclip/v1/Heartbeat.ts';
import type { Hello as _advclip_v1_Hello, Hello__Output as _advclip_v1_Hello__Output } from './advclip/v1/Hello.ts';
import type { LoraSpec as _advclip_v1_LoraSpec, LoraSpec__Output as _advclip_v1_LoraSpec__Output } from './advclip/v1/LoraSpec.ts';
import type { NamedTensor as _advclip_v1_NamedTensor, NamedTensor__Output as _advclip_v1_NamedTensor__Output } from './advclip/v1/NamedTensor.ts';
import type { RegisterReply as _advclip_v1_RegisterReply, RegisterReply__Output as _advclip_v1_RegisterReply__Output } from './advclip/v1/RegisterReply.ts';
import type { RegisterRequest as _advclip_v1_RegisterRequest, RegisterRequest__Output as _advclip_v1_RegisterRequest__Output } from './advclip/v1/RegisterRequest.ts';
import type { RunRequest as _advclip_v1_RunRequest, RunRequest__Output as _advclip_v1_RunRequest__Output } from './advclip/v1/RunRequest.ts';
import type { RunSpec as _advclip_v1_RunSpec, RunSpec__Output as _advclip_v1_RunSpec__Output } from './advclip/v1/RunSpec.ts';
import type { Seeds as _advclip_v1_Seeds, Seeds__Output as _advclip_v1_Seeds__Output } from './advclip/v1/Seeds.ts';
import type { Task as _advclip_v1_Task, Task__Output as _advclip_v1_Task__Output } from './advclip/v1/Task.ts';
import type { TaskError as _advclip_v1_TaskError, TaskError__Output as _advclip_v1_TaskError__Output } from './advclip/v1/TaskError.ts';
import type { TaskResult as _advclip_v1_TaskResult, TaskResult__Output as _advclip_v1_TaskResult__Output } from './advclip/v1/TaskResult.ts';
import type { Tensor as _advclip_v1_Tensor, Tensor__Output as _advclip_v1_Tensor__Output } from './advclip/v1/Tensor.ts';
import type { Timing as _advclip_v1_Timing, Timing__Output as _advclip_v1_Timing__Output } from './advclip/v1/Timing.ts';
import type { TrainSpec as _advclip_v1_TrainSpec, TrainSpec__Output as _advclip_v1_TrainSpec__Output } from './advclip/v1/TrainSpec.ts';
import type { WorkerCapabilities as _advclip_v1_WorkerCapabilities, WorkerCapabilities__Output as _advclip_v1_WorkerCapabilities__Output } from './advclip/v1/WorkerCapabilities.ts';
import type { WorkerMessage as _advclip_v1_WorkerMessage, WorkerMessage__Output as _advclip_v1_WorkerMessage__Output } from './advclip/v1/WorkerMessage.ts';

type SubtypeConstructor<Constructor extends new (...args: any) => any, Subtype> = {
  new(...args: ConstructorParameters<Constructor>): Subtype;
};

export interface ProtoGrpcType {
  advclip: {
    v1: {
      AdapterBlob: MessageTypeDefinition<_advclip_v1_AdapterBlob, _advclip_v1_AdapterBlob__Output>
      AdapterRequest: MessageTypeDefinition<_advclip_v1_AdapterRequest, _advclip_v1_AdapterRequest__Output>
      AdapterVersion: MessageTypeDefinition<_advclip_v1_AdapterVersion, _advclip_v1_AdapterVersion__Output>
      Chunk: MessageTypeDefinition<_advclip_v1_Chunk, _advclip_v1_Chunk__Output>
      ChunkResult: MessageTypeDefinition<_advclip_v1_ChunkResult, _advclip_v1_ChunkResult__Output>
      Coordinator: SubtypeConstructor<typeof grpc.Client, _advclip_v1_CoordinatorClient> & { service: _advclip_v1_CoordinatorDefinition }
      CoordinatorMessage: MessageTypeDefinition<_advclip_v1_CoordinatorMessage, _advclip_v1_CoordinatorMessage__Output>
      Drain: MessageTypeDefinition<_advclip_v1_Drain, _advclip_v1_Drain__Output>
      EvaluationSpec: MessageTypeDefinition<_advclip_v1_EvaluationSpec, _advclip_v1_EvaluationSpec__Output>
      Heartbeat: MessageTypeDefinition<_advclip_v1_Heartbeat, _advclip_v1_Heartbeat__Output>
      Hello: MessageTypeDefinition<_advclip_v1_Hello, _advclip_v1_Hello__Output>
      LoraSpec: MessageTypeDefinition<_advclip_v1_LoraSpec, _advclip_v1_LoraSpec__Output>
      NamedTensor: MessageTypeDefinition<_advclip_v1_NamedTensor, _advclip_v1_NamedTensor__Output>
      RegisterReply: MessageTypeDefinition<_advclip_v1_RegisterReply, _advclip_v1_RegisterReply__Output>
      RegisterRequest: MessageTypeDefinition<_advclip_v1_RegisterRequest, _advclip_v1_RegisterRequest__Output>
      RoundKind: EnumTypeDefinition
      RunRequest: MessageTypeDefinition<_advclip_v1_RunRequest, _advclip_v1_RunRequest__Output>
      RunSpec: MessageTypeDefinition<_advclip_v1_RunSpec, _advclip_v1_RunSpec__Output>
      Seeds: MessageTypeDefinition<_advclip_v1_Seeds, _advclip_v1_Seeds__Output>
      Task: MessageTypeDefinition<_advclip_v1_Task, _advclip_v1_Task__Output>
      TaskError: MessageTypeDefinition<_advclip_v1_TaskError, _advclip_v1_TaskError__Output>
      TaskResult: MessageTypeDefinition<_advclip_v1_TaskResult, _advclip_v1_TaskResult__Output>
      Tensor: MessageTypeDefinition<_advclip_v1_Tensor, _advclip_v1_Tensor__Output>
      Timing: MessageTypeDefinition<_advclip_v1_Timing, _advclip_v1_Timing__Output>
      TrainSpec: MessageTypeDefinition<_advclip_v1_TrainSpec, _advclip_v1_TrainSpec__Output>
      WorkerCapabilities: MessageTypeDefinition<_advclip_v1_WorkerCapabilities, _advclip_v1_WorkerCapabilities__Output>
      WorkerMessage: MessageTypeDefinition<_advclip_v1_WorkerMessage, _advclip_v1_WorkerMessage__Output>
    }
  }
}

