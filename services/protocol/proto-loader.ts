/**
 * Loads proto/advclip/v1 once at run time. The options must match
 * scripts/gen-proto.sh so the generated types describe what is loaded:
 * field names as in the .proto (snake_case), 64-bit integers as JS numbers,
 * enums as their names, bytes as Buffer, defaults filled in, and a virtual
 * field naming the set member of each oneof.
 */
import type { ChannelCredentials, ChannelOptions } from '@grpc/grpc-js';
import { loadPackageDefinition } from '@grpc/grpc-js';
import { loadSync, type Options } from '@grpc/proto-loader';
import { fileURLToPath } from 'node:url';
import type { ProtoGrpcType } from './generated/coordinator.ts';
import type { CoordinatorClient, CoordinatorDefinition } from './generated/advclip/v1/Coordinator.ts';

export const PROTO_DIR = fileURLToPath(new URL('../../proto', import.meta.url));

export const PROTO_LOADER_OPTIONS: Readonly<Options> = Object.freeze({
  keepCase: true,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
  includeDirs: [PROTO_DIR],
});

export type AdvclipV1 = ProtoGrpcType['advclip']['v1'];

let loaded: AdvclipV1 | undefined;

/** The advclip.v1 package: message types and the Coordinator client constructor. */
export function advclipProto(): AdvclipV1 {
  if (!loaded) {
    const definition = loadSync('advclip/v1/coordinator.proto', { ...PROTO_LOADER_OPTIONS });
    loaded = (loadPackageDefinition(definition) as unknown as ProtoGrpcType).advclip.v1;
  }
  return loaded;
}

/** The Coordinator service definition, for `server.addService`. */
export const coordinatorService = (): CoordinatorDefinition => advclipProto().Coordinator.service;

export function coordinatorClient(address: string, credentials: ChannelCredentials, options?: ChannelOptions): CoordinatorClient {
  return new (advclipProto().Coordinator)(address, credentials, options);
}
