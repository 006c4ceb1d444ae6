// Original file: proto/advclip/v1/coordinator.proto

import type { WorkerCapabilities as _advclip_v1_WorkerCapabilities, WorkerCapabilities__Output as _advclip_v1_WorkerCapabilities__Output } from '../../advclip/v1/WorkerCapabilities.ts';

export interface RegisterRequest {
  'capabilities'?: (_advclip_v1_WorkerCapabilities | null);
  /**
   * Shared secret of the cluster; a wrong token is not admitted.
   */
  'cluster_token'?: (string);
}

export interface RegisterRequest__Output {
  'capabilities': (_advclip_v1_WorkerCapabilities__Output | null);
  /**
   * Shared secret of the cluster; a wrong token is not admitted.
   */
  'cluster_token': (string);
}
