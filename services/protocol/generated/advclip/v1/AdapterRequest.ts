// Original file: proto/advclip/v1/coordinator.proto

import type { Long } from '@grpc/proto-loader';

export interface AdapterRequest {
  /**
   * 0: the newest version.
   */
  'version'?: (number | string | Long);
  /**
   * The run (Task.run_id; empty: the coordinator's own run).
   */
  'run_id'?: (string);
}

export interface AdapterRequest__Output {
  /**
   * 0: the newest version.
   */
  'version': (number);
  /**
   * The run (Task.run_id; empty: the coordinator's own run).
   */
  'run_id': (string);
}
