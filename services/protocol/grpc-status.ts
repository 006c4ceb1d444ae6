/**
 * AdvclipError codes ↔ gRPC status codes. Servers turn any thrown error into
 * a status with toGrpcError; clients turn a ServiceError back into an
 * AdvclipError with fromGrpcError. Our eight codes are gRPC codes of the same
 * name, so the round trip is exact; other statuses map to the nearest code.
 */
import { Metadata, status, type ServiceError, type StatusObject } from '@grpc/grpc-js';
import { AdvclipError, ErrorCodes, type ErrorCode } from '../core/errors.ts';

const TO_GRPC: Readonly<Record<ErrorCode, status>> = {
  INVALID_ARGUMENT: status.INVALID_ARGUMENT,
  NOT_FOUND: status.NOT_FOUND,
  DATA_LOSS: status.DATA_LOSS,
  FAILED_PRECONDITION: status.FAILED_PRECONDITION,
  RESOURCE_EXHAUSTED: status.RESOURCE_EXHAUSTED,
  UNAVAILABLE: status.UNAVAILABLE,
  DEADLINE_EXCEEDED: status.DEADLINE_EXCEEDED,
  INTERNAL: status.INTERNAL,
};

/** gRPC statuses with no AdvclipError of the same name. */
const NEAREST: Readonly<Partial<Record<status, ErrorCode>>> = {
  [status.CANCELLED]: 'UNAVAILABLE', // the peer went away mid-call
  [status.UNKNOWN]: 'INTERNAL',
  [status.ALREADY_EXISTS]: 'FAILED_PRECONDITION',
  [status.PERMISSION_DENIED]: 'FAILED_PRECONDITION', // not admitted
  [status.UNAUTHENTICATED]: 'FAILED_PRECONDITION', // not admitted
  [status.ABORTED]: 'FAILED_PRECONDITION', // stale round
  [status.OUT_OF_RANGE]: 'INVALID_ARGUMENT',
  [status.UNIMPLEMENTED]: 'INTERNAL', // a version mismatch between peers is our bug
};

export const grpcStatusOf = (code: ErrorCode): status => TO_GRPC[code];

export function errorCodeOf(grpcStatus: status): ErrorCode {
  const same = ErrorCodes.find((code) => TO_GRPC[code] === grpcStatus);
  return same ?? NEAREST[grpcStatus] ?? 'INTERNAL';
}

/** The status a server answers with for `err`; anything not an AdvclipError is INTERNAL. */
export function toGrpcError(err: unknown): Partial<StatusObject> {
  if (err instanceof AdvclipError) {
    return { code: grpcStatusOf(err.code), details: err.message, metadata: new Metadata() };
  }
  const message = err instanceof Error ? err.message : String(err);
  return { code: status.INTERNAL, details: `internal error: ${message}`, metadata: new Metadata() };
}

const isServiceError = (err: unknown): err is ServiceError =>
  err instanceof Error && typeof (err as Partial<ServiceError>).code === 'number';

/** A client-side error as an AdvclipError; `context` says which call failed. */
export function fromGrpcError(err: unknown, context: string): AdvclipError {
  if (err instanceof AdvclipError) return err;
  if (isServiceError(err)) {
    return new AdvclipError(errorCodeOf(err.code), `${context}: ${err.details || err.message}`, { cause: err });
  }
  const message = err instanceof Error ? err.message : String(err);
  return new AdvclipError('INTERNAL', `${context}: ${message}`, { cause: err });
}
