import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { AdvclipError, ErrorCodes } from '../../../services/core/errors.ts';
import { errorCodeOf, fromGrpcError, grpcStatusOf, toGrpcError } from '../../../services/protocol/grpc-status.ts';

const serviceError = (code: status, details: string): ServiceError =>
  Object.assign(new Error(`${code} ${status[code]}: ${details}`), { code, details, metadata: new Metadata() });

test('every AdvclipError code maps to the gRPC status of the same name and back', () => {
  for (const code of ErrorCodes) {
    assert.equal(status[grpcStatusOf(code)], code);
    assert.equal(errorCodeOf(grpcStatusOf(code)), code);
  }
});

test('gRPC statuses without an AdvclipError twin map to the nearest code', () => {
  assert.equal(errorCodeOf(status.CANCELLED), 'UNAVAILABLE');
  assert.equal(errorCodeOf(status.UNAUTHENTICATED), 'FAILED_PRECONDITION');
  assert.equal(errorCodeOf(status.PERMISSION_DENIED), 'FAILED_PRECONDITION');
  assert.equal(errorCodeOf(status.ABORTED), 'FAILED_PRECONDITION');
  assert.equal(errorCodeOf(status.OUT_OF_RANGE), 'INVALID_ARGUMENT');
  assert.equal(errorCodeOf(status.UNKNOWN), 'INTERNAL');
  assert.equal(errorCodeOf(status.UNIMPLEMENTED), 'INTERNAL');
  assert.equal(errorCodeOf(status.OK), 'INTERNAL');
  for (let s = 0; s <= 16; s++) assert.ok(ErrorCodes.includes(errorCodeOf(s)));
});

test('server side: an AdvclipError becomes its status and message; anything else is INTERNAL', () => {
  const bad = toGrpcError(new AdvclipError('DATA_LOSS', 'adapter 4: wrong hash'));
  assert.equal(bad.code, status.DATA_LOSS);
  assert.equal(bad.details, 'adapter 4: wrong hash');
  const bug = toGrpcError(new TypeError('x is undefined'));
  assert.equal(bug.code, status.INTERNAL);
  assert.match(bug.details ?? '', /x is undefined/);
});

test('client side: a ServiceError becomes an AdvclipError with the call named', () => {
  const err = fromGrpcError(serviceError(status.RESOURCE_EXHAUSTED, 'message larger than max'), 'GetAdapter(7)');
  assert.ok(err instanceof AdvclipError);
  assert.equal(err.code, 'RESOURCE_EXHAUSTED');
  assert.equal(err.message, 'GetAdapter(7): message larger than max');
  const same = new AdvclipError('NOT_FOUND', 'x');
  assert.equal(fromGrpcError(same, 'c'), same);
  assert.equal(fromGrpcError(new Error('boom'), 'c').code, 'INTERNAL');
});

test('the round trip through toGrpcError and fromGrpcError keeps code and message', () => {
  for (const code of ErrorCodes) {
    const sent = toGrpcError(new AdvclipError(code, `why ${code}`));
    const received = fromGrpcError(serviceError(sent.code!, sent.details!), 'call');
    assert.equal(received.code, code);
    assert.equal(received.message, `call: why ${code}`);
  }
});
