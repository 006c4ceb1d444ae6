// Original file: proto/advclip/v1/coordinator.proto

import type { Long } from '@grpc/proto-loader';

export interface DeltaRequest {
  'version'?: (number | string | Long);
}

export interface DeltaRequest__Output {
  'version': (number);
}
