// Original file: proto/advclip/v1/coordinator.proto

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
   * The run configuration the worker needs as JSON: model and data paths,
   * seed, LoRA config (rank, alpha, targets, dropout), prompt template,
   * perturbation mode, epsilon, class names.
   */
  'run_config_json'?: (string);
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
   * The run configuration the worker needs as JSON: model and data paths,
   * seed, LoRA config (rank, alpha, targets, dropout), prompt template,
   * perturbation mode, epsilon, class names.
   */
  'run_config_json': (string);
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
}
