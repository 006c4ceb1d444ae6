/**
 * The one tensor serde: HostTensor ↔ advclip.v1.Tensor (raw little-endian
 * float32 bytes + shape + dtype). Decoding trusts nothing in the message:
 * every way a peer can get it wrong is an AdvclipError naming the tensor.
 */
import { AdvclipError, invalidArgument } from '../core/errors.ts';
import { hostTensor, type HostTensor } from '../core/tensor.ts';
import type { NamedTensor, NamedTensor__Output } from './generated/advclip/v1/NamedTensor.ts';
import type { Tensor, Tensor__Output } from './generated/advclip/v1/Tensor.ts';
import { GRPC_TRANSPORT_DEFAULTS } from './grpc-options.ts';

export const TENSOR_DTYPE = 'float32';
const BYTES_PER_VALUE = 4;
const MAX_RANK = 8;
const UINT32_MAX = 2 ** 32 - 1;
const HOST_IS_LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

export interface DecodeTensorOptions {
  /** Named in every error, e.g. "task 7/2 delta" or a LoRA key. */
  readonly name: string;
  /** Exact shape required, if known. */
  readonly expectShape?: readonly number[];
  /** Largest accepted data size; default: the gRPC message limit. */
  readonly maxBytes?: number;
  /** NaN or ±Infinity → INVALID_ARGUMENT (e.g. a worker's gradients). */
  readonly rejectNonFinite?: boolean;
}

/** A HostTensor as a Tensor message; the bytes are a copy. */
export function encodeTensor(tensor: HostTensor): Tensor__Output {
  const { shape, data } = tensor;
  for (const dim of shape) {
    if (!Number.isSafeInteger(dim) || dim < 0 || dim > UINT32_MAX) {
      throw invalidArgument(`cannot encode a tensor with shape [${shape.join(',')}]`);
    }
  }
  if (data.length !== sizeOfShape(shape)) {
    throw invalidArgument(`cannot encode ${data.length} values as shape [${shape.join(',')}]`);
  }
  const bytes = Buffer.alloc(data.length * BYTES_PER_VALUE);
  if (HOST_IS_LITTLE_ENDIAN) {
    bytes.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  } else {
    for (let i = 0; i < data.length; i++) bytes.writeFloatLE(data[i], i * BYTES_PER_VALUE);
  }
  return { data: bytes, shape: [...shape], dtype: TENSOR_DTYPE };
}

/** A Tensor message as a HostTensor with its own aligned Float32Array. */
export function decodeTensor(message: Tensor | Tensor__Output | null | undefined, options: DecodeTensorOptions): HostTensor {
  const { name } = options;
  if (message === null || typeof message !== 'object') throw invalidArgument(`tensor "${name}" is missing`);
  if (message.dtype !== TENSOR_DTYPE) {
    throw invalidArgument(`tensor "${name}" has dtype ${JSON.stringify(message.dtype ?? '')}, expected "${TENSOR_DTYPE}"`);
  }
  const shape = validShape(message.shape, name);
  if (options.expectShape && !sameShape(shape, options.expectShape)) {
    throw invalidArgument(`tensor "${name}" has shape [${shape.join(',')}], expected [${options.expectShape.join(',')}]`);
  }
  const count = sizeOfShape(shape);
  const maxBytes = options.maxBytes ?? GRPC_TRANSPORT_DEFAULTS.maxMessageBytes;
  if (count * BYTES_PER_VALUE > maxBytes) {
    throw new AdvclipError(
      'RESOURCE_EXHAUSTED',
      `tensor "${name}" of shape [${shape.join(',')}] needs ${count * BYTES_PER_VALUE} bytes, above the limit of ${maxBytes}`,
    );
  }
  const bytes = message.data;
  if (!(bytes instanceof Uint8Array)) throw invalidArgument(`tensor "${name}" has no byte data`);
  if (bytes.byteLength !== count * BYTES_PER_VALUE) {
    throw invalidArgument(
      `tensor "${name}" has ${bytes.byteLength} bytes, expected ${count * BYTES_PER_VALUE} for shape [${shape.join(',')}]`,
    );
  }
  const data = new Float32Array(count);
  if (HOST_IS_LITTLE_ENDIAN) {
    new Uint8Array(data.buffer).set(bytes);
  } else {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let i = 0; i < count; i++) data[i] = view.getFloat32(i * BYTES_PER_VALUE, true);
  }
  if (options.rejectNonFinite) {
    const bad = data.findIndex((v) => !Number.isFinite(v));
    if (bad >= 0) throw invalidArgument(`tensor "${name}" has a non-finite value (${data[bad]}) at flat index ${bad}`);
  }
  return hostTensor(shape, data);
}

export const encodeNamedTensor = (name: string, tensor: HostTensor): NamedTensor__Output => ({
  name,
  tensor: encodeTensor(tensor),
});

export interface DecodeNamedTensorsOptions {
  /** Prefixed to tensor names in errors, e.g. "task 7/2 chunk 3". */
  readonly context: string;
  /** The exact set of names and their shapes, if known. */
  readonly expectShapes?: ReadonlyMap<string, readonly number[]>;
  readonly maxBytes?: number;
  readonly rejectNonFinite?: boolean;
}

/** A list of NamedTensor as a Map; duplicate, unexpected or missing names are INVALID_ARGUMENT. */
export function decodeNamedTensors(
  list: readonly (NamedTensor | NamedTensor__Output)[] | null | undefined,
  options: DecodeNamedTensorsOptions,
): Map<string, HostTensor> {
  const { context, expectShapes } = options;
  const out = new Map<string, HostTensor>();
  for (const entry of list ?? []) {
    const name = entry?.name;
    if (typeof name !== 'string' || name === '') throw invalidArgument(`${context}: a tensor has no name`);
    if (out.has(name)) throw invalidArgument(`${context}: tensor "${name}" appears twice`);
    const expectShape = expectShapes?.get(name);
    if (expectShapes && !expectShape) throw invalidArgument(`${context}: unexpected tensor "${name}"`);
    out.set(
      name,
      decodeTensor(entry.tensor, {
        name: `${context}: ${name}`,
        expectShape,
        maxBytes: options.maxBytes,
        rejectNonFinite: options.rejectNonFinite,
      }),
    );
  }
  for (const name of expectShapes?.keys() ?? []) {
    if (!out.has(name)) throw invalidArgument(`${context}: tensor "${name}" is missing`);
  }
  return out;
}

function validShape(shape: unknown, name: string): number[] {
  if (!Array.isArray(shape)) throw invalidArgument(`tensor "${name}" has no shape`);
  if (shape.length > MAX_RANK) throw invalidArgument(`tensor "${name}" has rank ${shape.length}, above ${MAX_RANK}`);
  for (const dim of shape) {
    if (typeof dim !== 'number' || !Number.isSafeInteger(dim) || dim < 0 || dim > UINT32_MAX) {
      throw invalidArgument(`tensor "${name}" has an invalid dimension ${JSON.stringify(dim)} in its shape`);
    }
  }
  return [...shape] as number[];
}

/** Product of the dims, capped at MAX_SAFE_INTEGER so huge shapes fail the size check instead of overflowing. */
function sizeOfShape(shape: readonly number[]): number {
  let size = 1;
  for (const dim of shape) size = Math.min(size * dim, Number.MAX_SAFE_INTEGER);
  return size;
}

const sameShape = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((d, i) => d === b[i]);
