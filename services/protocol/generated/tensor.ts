import type * as grpc from '@grpc/grpc-js';
import type { MessageTypeDefinition } from '@grpc/proto-loader';

import type { NamedTensor as _advclip_v1_NamedTensor, NamedTensor__Output as _advclip_v1_NamedTensor__Output } from './advclip/v1/NamedTensor.ts';
import type { Tensor as _advclip_v1_Tensor, Tensor__Output as _advclip_v1_Tensor__Output } from './advclip/v1/Tensor.ts';

type SubtypeConstructor<Constructor extends new (...args: any) => any, Subtype> = {
  new(...args: ConstructorParameters<Constructor>): Subtype;
};

export interface ProtoGrpcType {
  advclip: {
    v1: {
      NamedTensor: MessageTypeDefinition<_advclip_v1_NamedTensor, _advclip_v1_NamedTensor__Output>
      Tensor: MessageTypeDefinition<_advclip_v1_Tensor, _advclip_v1_Tensor__Output>
    }
  }
}

