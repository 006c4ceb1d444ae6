// Original file: proto/advclip/v1/coordinator.proto

import type { Long } from '@grpc/proto-loader';

/**
 * First message on the Work stream.
 */
export interface Hello {
  'worker_id'?: (string);
  /**
   * Newest adapter version the worker holds (0: none).
   */
  'adapter_version'?: (number | string | Long);
}

/**
 * First message on the Work stream.
 */
export interface Hello__Output {
  'worker_id': (string);
  /**
   * Newest adapter version the worker holds (0: none).
   */
  'adapter_version': (number);
}
