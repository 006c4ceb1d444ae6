/**
 * The safetensors format (https://github.com/huggingface/safetensors), read
 * and written by us: an 8-byte little-endian header length, a JSON header
 * `{name: {dtype, shape, data_offsets: [begin, end]}, __metadata__?: {k: v}}`,
 * then one byte buffer the offsets point into.
 *
 * Everything becomes float32 on the host (HostTensor), so the reader widens
 * half floats and integers. Validation follows the reference implementation:
 * the tensors must tile the data buffer exactly (no gap, no overlap, nothing
 * left over), because a file that does not is truncated or tampered with.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { AdvclipError, dataLoss, invalidArgument, notFound } from '../core/errors.ts';
import { hostTensor, sizeOf, type HostTensor } from '../core/tensor.ts';

/** Bytes per element of every dtype we can widen to float32. */
const DTYPE_BYTES = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
} as const;
export type SafetensorsDtype = keyof typeof DTYPE_BYTES;
export type WritableDtype = 'F32' | 'F16';

/** The reference implementation's cap; a larger header is hostile or not safetensors. */
export const MAX_HEADER_BYTES = 100_000_000;

export interface SafetensorsFile {
  readonly tensors: Map<string, HostTensor>;
  /** dtype each tensor was stored in (the host copy is always float32). */
  readonly dtypes: Map<string, SafetensorsDtype>;
  /** the header's `__metadata__` (string → string), empty when absent. */
  readonly metadata: Record<string, string>;
}

export interface TensorEntry {
  readonly dtype: SafetensorsDtype;
  readonly shape: readonly number[];
  /** offsets into the data buffer (after the header) */
  readonly begin: number;
  readonly end: number;
}

export interface SafetensorsHeader {
  readonly entries: Map<string, TensorEntry>;
  readonly metadata: Record<string, string>;
  /** where the data buffer starts in the file */
  readonly dataStart: number;
}

const isDtype = (s: unknown): s is SafetensorsDtype => typeof s === 'string' && Object.hasOwn(DTYPE_BYTES, s);
const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/** Parses and validates the header only: cheap, and enough to check names and shapes. */
export function parseSafetensorsHeader(bytes: Uint8Array, source: string): SafetensorsHeader {
  if (bytes.length < 8) {
    throw dataLoss(`${source}: ${bytes.length} bytes is too short for a safetensors file (needs an 8-byte header length)`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = view.getBigUint64(0, true);
  if (headerLength > BigInt(MAX_HEADER_BYTES)) {
    throw new AdvclipError(
      'RESOURCE_EXHAUSTED',
      `${source}: safetensors header of ${headerLength} bytes exceeds the ${MAX_HEADER_BYTES}-byte limit`,
    );
  }
  const dataStart = 8 + Number(headerLength);
  if (dataStart > bytes.length) {
    throw dataLoss(`${source}: safetensors header claims ${headerLength} bytes but the file has only ${bytes.length - 8} after the length`);
  }
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, dataStart)));
  } catch (cause) {
    throw new AdvclipError('DATA_LOSS', `${source}: safetensors header is not valid UTF-8 JSON (${(cause as Error).message})`, { cause });
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) {
    throw dataLoss(`${source}: safetensors header must be a JSON object`);
  }
  const dataLength = bytes.length - dataStart;
  const metadata: Record<string, string> = {};
  const entries = new Map<string, TensorEntry>();
  for (const [name, raw] of Object.entries(header)) {
    if (name === '__metadata__') {
      Object.assign(metadata, parseMetadata(raw, source));
      continue;
    }
    entries.set(name, parseEntry(raw, name, dataLength, source));
  }
  checkTiling(entries, dataLength, source);
  return { entries, metadata, dataStart };
}

function parseMetadata(raw: unknown, source: string): Record<string, string> {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw dataLoss(`${source}: safetensors __metadata__ must be an object of strings`);
  }
  for (const [k, v] of Object.entries(raw)) {
    if (typeof v !== 'string') throw dataLoss(`${source}: safetensors __metadata__ "${k}" is not a string`);
  }
  return raw as Record<string, string>;
}

function parseEntry(raw: unknown, name: string, dataLength: number, source: string): TensorEntry {
  const where = `${source}: tensor "${name}"`;
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw dataLoss(`${where} has no {dtype, shape, data_offsets} entry`);
  }
  const { dtype, shape, data_offsets: offsets } = raw as Record<string, unknown>;
  if (!isDtype(dtype)) {
    throw dataLoss(`${where} has unsupported dtype ${JSON.stringify(dtype)} (expected one of ${Object.keys(DTYPE_BYTES).join(', ')})`);
  }
  if (!Array.isArray(shape) || !shape.every(isCount)) {
    throw dataLoss(`${where} has invalid shape ${JSON.stringify(shape)}`);
  }
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount) || offsets[0] > offsets[1]) {
    throw dataLoss(`${where} has invalid data_offsets ${JSON.stringify(offsets)}`);
  }
  const [begin, end] = offsets as [number, number];
  const byteCount = sizeOf(shape) * DTYPE_BYTES[dtype];
  if (!Number.isSafeInteger(byteCount) || end - begin !== byteCount) {
    throw dataLoss(`${where}: data_offsets [${begin},${end}] span ${end - begin} bytes but ${dtype}[${shape.join(',')}] needs ${byteCount}`);
  }
  if (end > dataLength) {
    throw dataLoss(`${where}: data_offsets [${begin},${end}] run past the end of the data (${dataLength} bytes): file truncated`);
  }
  return { dtype, shape, begin, end };
}

function checkTiling(entries: Map<string, TensorEntry>, dataLength: number, source: string): void {
  const sorted = [...entries].sort(([, a], [, b]) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  let previous = '';
  for (const [name, { begin, end }] of sorted) {
    if (begin < cursor) {
      throw dataLoss(`${source}: tensor "${name}" [${begin},${end}] overlaps tensor "${previous}" (ends at ${cursor})`);
    }
    if (begin > cursor) {
      throw dataLoss(`${source}: bytes [${cursor},${begin}) before tensor "${name}" belong to no tensor`);
    }
    cursor = end;
    previous = name;
  }
  if (cursor !== dataLength) {
    throw dataLoss(`${source}: tensors cover ${cursor} bytes of a ${dataLength}-byte data buffer`);
  }
}

/** Parses a whole safetensors file into float32 host tensors plus its metadata. F32 tensors may share memory with `bytes`. */
export function parseSafetensors(bytes: Uint8Array, source: string): SafetensorsFile {
  const { entries, metadata, dataStart } = parseSafetensorsHeader(bytes, source);
  const tensors = new Map<string, HostTensor>();
  const dtypes = new Map<string, SafetensorsDtype>();
  for (const [name, entry] of entries) {
    const raw = bytes.subarray(dataStart + entry.begin, dataStart + entry.end);
    tensors.set(name, hostTensor(entry.shape, decode(raw, entry.dtype)));
    dtypes.set(name, entry.dtype);
  }
  return { tensors, dtypes, metadata };
}

export function readSafetensors(bytes: Uint8Array, source: string): Map<string, HostTensor> {
  return parseSafetensors(bytes, source).tensors;
}

export async function readSafetensorsFile(path: string): Promise<SafetensorsFile> {
  return parseSafetensors(await readFileOrNotFound(path), path);
}

async function readFileOrNotFound(path: string): Promise<Uint8Array> {
  try {
    return await readFile(path);
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === 'ENOENT') throw notFound(`${path}: no such file`);
    throw cause;
  }
}

function decode(raw: Uint8Array, dtype: SafetensorsDtype): Float32Array {
  const n = raw.length / DTYPE_BYTES[dtype];
  if (dtype === 'F32') {
    // Hosts are little-endian. Share the file's memory when aligned (a ViT-B/16 checkpoint is 600 MB;
    // a copy would double that); otherwise copy, since offsets need not be 4-aligned.
    return raw.byteOffset % 4 === 0 ? new Float32Array(raw.buffer, raw.byteOffset, n) : new Float32Array(raw.slice().buffer);
  }
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const out = new Float32Array(n);
  const bits = new Uint32Array(out.buffer);
  switch (dtype) {
    case 'F64':
      for (let i = 0; i < n; i++) out[i] = view.getFloat64(8 * i, true);
      break;
    case 'F16':
      for (let i = 0; i < n; i++) out[i] = f16BitsToNumber(view.getUint16(2 * i, true));
      break;
    case 'BF16':
      // bfloat16 is the top half of a float32.
      for (let i = 0; i < n; i++) bits[i] = view.getUint16(2 * i, true) << 16;
      break;
    case 'I64':
      for (let i = 0; i < n; i++) out[i] = Number(view.getBigInt64(8 * i, true));
      break;
    case 'I32':
      for (let i = 0; i < n; i++) out[i] = view.getInt32(4 * i, true);
      break;
    case 'I16':
      for (let i = 0; i < n; i++) out[i] = view.getInt16(2 * i, true);
      break;
    case 'I8':
      for (let i = 0; i < n; i++) out[i] = view.getInt8(i);
      break;
    case 'U8':
    case 'BOOL':
      for (let i = 0; i < n; i++) out[i] = raw[i];
      break;
  }
  return out;
}

/** IEEE 754 binary16 bits → number (exact: every half is a float32). */
export function f16BitsToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const fraction = h & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24; // zero and subnormals
  if (exponent === 0x1f) return fraction === 0 ? sign * Infinity : NaN;
  return sign * (1024 + fraction) * 2 ** (exponent - 25);
}

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** float32 value → binary16 bits, rounding to nearest even; overflow → ±inf, NaN stays NaN. */
export function numberToF16Bits(value: number): number {
  f32Scratch[0] = value;
  const x = u32Scratch[0];
  const sign = (x >>> 16) & 0x8000;
  const exponent = (x >>> 23) & 0xff;
  const mantissa = x & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa ? 0x200 : 0);
  // Rebias 127 → 15; e is the half exponent field this value would have.
  const e = exponent - 112;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // Subnormal half (or zero): shift the full significand right; below half the smallest subnormal it rounds to 0.
    if (e < -10) return sign;
    const significand = mantissa | 0x800000;
    const shift = 14 - e;
    return sign | roundShift(significand, shift);
  }
  // Rounding may carry into the exponent, which also turns the largest values into inf correctly.
  return sign | roundShift((e << 23) | mantissa, 13);
}

/** value >> shift, rounded to nearest, ties to even. */
function roundShift(value: number, shift: number): number {
  const truncated = value >>> shift;
  const remainder = value - truncated * 2 ** shift;
  const half = 2 ** (shift - 1);
  if (remainder > half || (remainder === half && (truncated & 1) === 1)) return truncated + 1;
  return truncated;
}

export interface WriteOptions {
  /** storage dtype for every tensor (default F32) */
  readonly dtype?: WritableDtype;
  readonly metadata?: Readonly<Record<string, string>>;
}

/** Serialises tensors in sorted-name order with a space-padded, 8-byte-aligned header, as HF's writer does. */
export function writeSafetensors(
  tensors: ReadonlyMap<string, HostTensor> | Readonly<Record<string, HostTensor>>,
  opts: WriteOptions = {},
): Uint8Array {
  const dtype = opts.dtype ?? 'F32';
  if (dtype !== 'F32' && dtype !== 'F16') throw invalidArgument(`safetensors writer: unsupported dtype "${dtype}" (F32 or F16)`);
  const entries = (tensors instanceof Map ? [...tensors] : Object.entries(tensors)).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const width = DTYPE_BYTES[dtype];
  const header: Record<string, unknown> = {};
  if (opts.metadata && Object.keys(opts.metadata).length > 0) header.__metadata__ = { ...opts.metadata };
  let offset = 0;
  for (const [name, t] of entries) {
    if (name === '__metadata__') throw invalidArgument('safetensors writer: "__metadata__" is reserved and cannot name a tensor');
    if (t.data.length !== sizeOf(t.shape)) {
      throw invalidArgument(`safetensors writer: tensor "${name}" has ${t.data.length} values for shape [${t.shape.join(',')}]`);
    }
    const end = offset + t.data.length * width;
    header[name] = { dtype, shape: [...t.shape], data_offsets: [offset, end] };
    offset = end;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const headerLength = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + headerLength + offset);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(headerLength), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + headerLength);
  let cursor = 8 + headerLength;
  for (const [, t] of entries) {
    if (dtype === 'F32') {
      out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), cursor);
    } else {
      for (let i = 0; i < t.data.length; i++) view.setUint16(cursor + 2 * i, numberToF16Bits(t.data[i]), true);
    }
    cursor += t.data.length * width;
  }
  return out;
}

export async function writeSafetensorsFile(
  path: string,
  tensors: ReadonlyMap<string, HostTensor> | Readonly<Record<string, HostTensor>>,
  opts: WriteOptions = {},
): Promise<void> {
  await writeFile(path, writeSafetensors(tensors, opts));
}
