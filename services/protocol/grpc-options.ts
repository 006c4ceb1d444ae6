/**
 * gRPC transport settings for both ends, stated once: message size limits
 * (gradients and adapters travel as bytes, far above gRPC's 4 MiB default)
 * and keepalive.
 *
 * Keepalive: a worker's event loop blocks for a whole task while tfjs wasm
 * computes (tens of seconds on a big model), and a blocked loop answers no
 * HTTP/2 ping; an unanswered ping drops every stream of the connection. So
 * the coordinator (server) never pings: a busy worker's liveness is its task
 * deadline, an idle one's its heartbeats. The worker (client) pings to find a
 * dead coordinator, with a timeout longer than any synchronous compute: after
 * a long block the expired timeout timer runs before the socket is read, so
 * a shorter one would drop the stream even though the ack is waiting.
 */
import type { ChannelOptions, ServerOptions } from '@grpc/grpc-js';
import { invalidArgument } from '../core/errors.ts';

export interface GrpcTransportOptions {
  /** Largest message either end sends or accepts. */
  readonly maxMessageBytes?: number;
  /** The client pings the server after this long without activity. */
  readonly keepaliveTimeMs?: number;
  /** The client drops the connection when a ping is not answered in this time (longer than any blocking compute). */
  readonly keepaliveTimeoutMs?: number;
}

/** How often a worker sends a Heartbeat on its Work stream (the coordinator's RegisterReply sets it); an idle worker silent for 4× that is dropped. */
export const HEARTBEAT_INTERVAL_MS = 2_000;

export type GrpcTransportConfig = Readonly<Required<GrpcTransportOptions>>;

export const GRPC_TRANSPORT_DEFAULTS: GrpcTransportConfig = Object.freeze({
  maxMessageBytes: 256 * 1024 * 1024,
  keepaliveTimeMs: 20_000,
  keepaliveTimeoutMs: 300_000,
});

/**
 * A worker's limit while it registers: RegisterReply carries the run's
 * RunSpec (a few hundred bytes); the limit of its Work and GetAdapter
 * calls is sized from the run's shapes once it knows them.
 */
export const REGISTER_MAX_MESSAGE_BYTES = 1024 * 1024;

/** HTTP/2 flow-control window of a channel: large tensors stream without stalling. */
const FLOW_CONTROL_WINDOW_BYTES = 8 * 1024 * 1024;

export function resolveGrpcTransport(options: GrpcTransportOptions = {}): GrpcTransportConfig {
  const config = { ...GRPC_TRANSPORT_DEFAULTS, ...definedOnly(options) };
  for (const [key, value] of Object.entries(config)) {
    if (!Number.isSafeInteger(value) || value <= 0) {
      throw invalidArgument(`gRPC ${key} must be a positive integer, got ${value}`);
    }
  }
  if (config.maxMessageBytes > 2 ** 31 - 1) {
    throw invalidArgument(`gRPC maxMessageBytes must be below 2 GiB, got ${config.maxMessageBytes}`);
  }
  return Object.freeze(config);
}

/** Options for a client channel (the worker's connection to the coordinator). */
export function grpcChannelOptions(options: GrpcTransportOptions = {}): ChannelOptions {
  const config = resolveGrpcTransport(options);
  return {
    'grpc.max_send_message_length': config.maxMessageBytes,
    'grpc.max_receive_message_length': config.maxMessageBytes,
    'grpc.keepalive_time_ms': config.keepaliveTimeMs,
    'grpc.keepalive_timeout_ms': config.keepaliveTimeoutMs,
    'grpc.keepalive_permit_without_calls': 1,
    'grpc-node.flow_control_window': FLOW_CONTROL_WINDOW_BYTES,
  };
}

/** Options for a server (the coordinator): no keepalive pings (see above). */
export function grpcServerOptions(options: GrpcTransportOptions = {}): ServerOptions {
  const config = resolveGrpcTransport(options);
  return {
    'grpc.max_send_message_length': config.maxMessageBytes,
    'grpc.max_receive_message_length': config.maxMessageBytes,
  };
}

function definedOnly(options: GrpcTransportOptions): GrpcTransportOptions {
  return Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined));
}
