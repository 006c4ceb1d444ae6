// Original file: proto/advclip/v1/coordinator.proto

import type { Long } from '@grpc/proto-loader';

/**
 * A new adapter version exists (sent on the stream so workers without NATS
 * learn of it; with NATS they see it on adapter.latest first).
 */
export interface AdapterVersion {
  'version'?: (number | string | Long);
  'sha256'?: (string);
  /**
   * Non-empty when the version is on NATS (e.g. "adapter-12"): inline in the
   * adapter.latest KV value, or under this name in the object store when it
   * is too big for one message. Empty: fetch it with GetAdapter.
   */
  'object'?: (string);
  'size_bytes'?: (number | string | Long);
  /**
   * The run whose version it is (empty: the coordinator's own run). Versions
   * of a sweep's runs are not on NATS: they come with GetAdapter.
   */
  'run_id'?: (string);
}

/**
 * A new adapter version exists (sent on the stream so workers without NATS
 * learn of it; with NATS they see it on adapter.latest first).
 */
export interface AdapterVersion__Output {
  'version': (number);
  'sha256': (string);
  /**
   * Non-empty when the version is on NATS (e.g. "adapter-12"): inline in the
   * adapter.latest KV value, or under this name in the object store when it
   * is too big for one message. Empty: fetch it with GetAdapter.
   */
  'object': (string);
  'size_bytes': (number);
  /**
   * The run whose version it is (empty: the coordinator's own run). Versions
   * of a sweep's runs are not on NATS: they come with GetAdapter.
   */
  'run_id': (string);
}
