// Original file: proto/advclip/v1/coordinator.proto

import type { Tensor as _advclip_v1_Tensor, Tensor__Output as _advclip_v1_Tensor__Output } from '../../advclip/v1/Tensor.ts';
import type { Long } from '@grpc/proto-loader';

export interface DeltaBlob {
  'version'?: (number | string | Long);
  'delta'?: (_advclip_v1_Tensor | null);
}

export interface DeltaBlob__Output {
  'version': (number);
  'delta': (_advclip_v1_Tensor__Output | null);
}
