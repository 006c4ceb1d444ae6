// Original file: proto/advclip/v1/coordinator.proto

import type { RunSpec as _advclip_v1_RunSpec, RunSpec__Output as _advclip_v1_RunSpec__Output } from '../../advclip/v1/RunSpec.ts';
import type { Long } from '@grpc/proto-loader';

export interface RegisterReply {
  /**
   * Identity the worker uses in Hello and heartbeats.
   */
  'worker_id'?: (string);
  /**
   * How often the worker sends a Heartbeat on the Work stream.
   */
  'heartbeat_interval_ms'?: (number);
  /**
   * NATS server for adapter versions; empty: use GetAdapter.
   */
  'nats_url'?: (string);
  /**
   * Cluster name that prefixes NATS subjects and buckets (subjects.ts).
   */
  'nats_cluster'?: (string);
  /**
   * The newest adapter version at registration time.
   */
  'adapter_version'?: (number | string | Long);
  /**
   * The run to compute for (run.proto). Unset when the coordinator serves a
   * sweep (multi_run): each Task names its run, fetched with GetRun.
   */
  'run_spec'?: (_advclip_v1_RunSpec | null);
  /**
   * The coordinator serves several runs at once (advclip sweep): there is no
   * run of its own; tasks carry a run_id.
   */
  'multi_run'?: (boolean);
}

export interface RegisterReply__Output {
  /**
   * Identity the worker uses in Hello and heartbeats.
   */
  'worker_id': (string);
  /**
   * How often the worker sends a Heartbeat on the Work stream.
   */
  'heartbeat_interval_ms': (number);
  /**
   * NATS server for adapter versions; empty: use GetAdapter.
   */
  'nats_url': (string);
  /**
   * Cluster name that prefixes NATS subjects and buckets (subjects.ts).
   */
  'nats_cluster': (string);
  /**
   * The newest adapter version at registration time.
   */
  'adapter_version': (number);
  /**
   * The run to compute for (run.proto). Unset when the coordinator serves a
   * sweep (multi_run): each Task names its run, fetched with GetRun.
   */
  'run_spec': (_advclip_v1_RunSpec__Output | null);
  /**
   * The coordinator serves several runs at once (advclip sweep): there is no
   * run of its own; tasks carry a run_id.
   */
  'multi_run': (boolean);
}
