/**
 * The value of the KV key `adapter.latest`: one JSON header line naming the
 * version and the SHA-256 of its blob, then the blob itself when the whole
 * value fits in one NATS message. Inline, the KV watch hands a worker the
 * bytes with the version, with no second fetch; a blob too big for a
 * message goes to the object store and the header names its object.
 *
 *   {"version":7,"sha256":"…","inline":757760}\n<757760 bytes>
 *   {"version":7,"sha256":"…","object":"adapter-7"}
 */
import { AdvclipError } from '../core/errors.ts';

interface Header {
  readonly version: number;
  /** SHA-256 of the blob, lowercase hex. */
  readonly sha256: string;
}

export type LatestAdapter = (Header & { readonly inline: Uint8Array }) | (Header & { readonly object: string });

const NEWLINE = 0x0a;
const SHA256_HEX = /^[0-9a-f]{64}$/;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** `blob` inline under its header, or undefined when the value would exceed `maxBytes` (the server's max_payload). */
export function encodeInlineLatest(version: number, sha256: string, blob: Uint8Array, maxBytes: number): Uint8Array | undefined {
  const header = encoder.encode(JSON.stringify({ version, sha256, inline: blob.byteLength }));
  if (header.byteLength + 1 + blob.byteLength > maxBytes) return undefined;
  const value = new Uint8Array(header.byteLength + 1 + blob.byteLength);
  value.set(header);
  value[header.byteLength] = NEWLINE;
  value.set(blob, header.byteLength + 1);
  return value;
}

export function encodeObjectLatest(version: number, sha256: string, object: string): Uint8Array {
  return encoder.encode(JSON.stringify({ version, sha256, object }));
}

/** The header and, inline, a view of the blob in `value` (not yet checked against its SHA-256); DATA_LOSS when malformed. */
export function parseLatest(value: Uint8Array): LatestAdapter {
  const newline = value.indexOf(NEWLINE);
  const headerBytes = newline < 0 ? value : value.subarray(0, newline);
  const shown = () => decoder.decode(headerBytes.subarray(0, 200));
  let header: unknown;
  try {
    header = JSON.parse(decoder.decode(headerBytes));
  } catch {
    throw new AdvclipError('DATA_LOSS', `adapter.latest is not JSON: ${shown()}`);
  }
  const { version, sha256, inline, object } = (header ?? {}) as Record<string, unknown>;
  const named = typeof version === 'number' && Number.isSafeInteger(version) && version >= 1 && typeof sha256 === 'string' && SHA256_HEX.test(sha256);
  if (named && typeof object === 'string' && object !== '' && inline === undefined && newline < 0) return { version, sha256, object };
  if (named && typeof inline === 'number' && Number.isSafeInteger(inline) && inline >= 0 && object === undefined && newline >= 0) {
    const blob = value.subarray(newline + 1);
    if (blob.byteLength !== inline) {
      throw new AdvclipError('DATA_LOSS', `adapter.latest: version ${version} carries ${blob.byteLength} bytes, its header says ${inline}`);
    }
    return { version, sha256, inline: blob };
  }
  throw new AdvclipError('DATA_LOSS', `adapter.latest is not {version, sha256, object} nor {version, sha256, inline} + blob: ${shown()}`);
}
