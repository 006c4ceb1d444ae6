/**
 * What a gRPC server sends and receives, counted where grpc-js turns
 * messages into bytes and back: a copy of a service definition whose
 * response serialisers and request deserialisers also report each
 * message's size. The size is the protobuf encoding of the message — not
 * gRPC's 5-byte length prefix, HTTP/2 frames or TLS records. Counting there
 * encodes nothing twice: the bytes exist anyway.
 */
import type { MethodDefinition, ServiceDefinition } from '@grpc/grpc-js';

export const WireDirections = ['sent', 'received'] as const;
export type WireDirection = (typeof WireDirections)[number];

export interface WireMessage {
  readonly direction: WireDirection;
  /** on a stream, the member of the message's `body` oneof (`task`, `result`, …); on a unary call, the method (`get_adapter`) */
  readonly message: string;
  readonly bytes: number;
}

/** `service` as a server serves it, with every message it sends or receives counted by `count`. */
export function meteredServerService<S extends ServiceDefinition>(service: S, count: (message: WireMessage) => void): S {
  return Object.fromEntries(Object.entries(service).map(([name, method]) => [name, meteredMethod(name, method, count)])) as S;
}

function meteredMethod(name: string, method: MethodDefinition<unknown, unknown>, count: (message: WireMessage) => void): MethodDefinition<unknown, unknown> {
  const unary = snakeCase(name);
  const messageOf = method.requestStream || method.responseStream ? bodyOf : () => unary;
  return {
    ...method,
    responseSerialize: (value) => {
      const bytes = method.responseSerialize(value);
      count({ direction: 'sent', message: messageOf(value), bytes: bytes.byteLength });
      return bytes;
    },
    requestDeserialize: (bytes) => {
      const value = method.requestDeserialize(bytes);
      count({ direction: 'received', message: messageOf(value), bytes: bytes.byteLength });
      return value;
    },
  };
}

/** A decoded message names its oneof member in `body`; one being sent is known by the member it sets. */
function bodyOf(value: unknown): string {
  const m = value as Record<string, unknown>;
  if (typeof m.body === 'string') return m.body;
  return Object.keys(m).find((k) => m[k] !== null && m[k] !== undefined) ?? 'empty';
}

const snakeCase = (name: string) => name.replace(/(?<=[a-z0-9])([A-Z])/g, '_$1').toLowerCase();
