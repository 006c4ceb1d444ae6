// Original file: proto/advclip/v1/coordinator.proto

import type { Long } from '@grpc/proto-loader';

export interface Heartbeat {
  'worker_id'?: (string);
  /**
   * Increments by one per heartbeat.
   */
  'seq'?: (number | string | Long);
  /**
   * Newest adapter version the worker holds and verified.
   */
  'adapter_version'?: (number | string | Long);
  /**
   * Tasks received and not yet answered.
   */
  'tasks_in_flight'?: (number);
}

export interface Heartbeat__Output {
  'worker_id': (string);
  /**
   * Increments by one per heartbeat.
   */
  'seq': (number);
  /**
   * Newest adapter version the worker holds and verified.
   */
  'adapter_version': (number);
  /**
   * Tasks received and not yet answered.
   */
  'tasks_in_flight': (number);
}
