import type * as grpc from '@grpc/grpc-js';
import type { MessageTypeDefinition } from '@grpc/proto-loader';

import type { EvaluationSpec as _advclip_v1_EvaluationSpec, EvaluationSpec__Output as _advclip_v1_EvaluationSpec__Output } from './advclip/v1/EvaluationSpec.ts';
import type { LoraSpec as _advclip_v1_LoraSpec, LoraSpec__Output as _advclip_v1_LoraSpec__Output } from './advclip/v1/LoraSpec.ts';
import type { RunSpec as _advclip_v1_RunSpec, RunSpec__Output as _advclip_v1_RunSpec__Output } from './advclip/v1/RunSpec.ts';
import type { TrainSpec as _advclip_v1_TrainSpec, TrainSpec__Output as _advclip_v1_TrainSpec__Output } from './advclip/v1/TrainSpec.ts';

type SubtypeConstructor<Constructor extends new (...args: any) => any, Subtype> = {
  new(...args: ConstructorParameters<Constructor>): Subtype;
};

export interface ProtoGrpcType {
  advclip: {
    v1: {
      EvaluationSpec: MessageTypeDefinition<_advclip_v1_EvaluationSpec, _advclip_v1_EvaluationSpec__Output>
      LoraSpec: MessageTypeDefinition<_advclip_v1_LoraSpec, _advclip_v1_LoraSpec__Output>
      RunSpec: MessageTypeDefinition<_advclip_v1_RunSpec, _advclip_v1_RunSpec__Output>
      TrainSpec: MessageTypeDefinition<_advclip_v1_TrainSpec, _advclip_v1_TrainSpec__Output>
    }
  }
}

