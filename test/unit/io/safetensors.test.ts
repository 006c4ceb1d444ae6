import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { AdvclipError } from '../../../services/core/errors.ts';
import { hostTensor } from '../../../services/core/tensor.ts';
import {
  f16BitsToNumber,
  numberToF16Bits,
  parseSafetensors,
  readSafetensors,
  writeSafetensors,
} from '../../../services/io/safetensors.ts';

/** Builds a file from a literal header object and raw data bytes, to forge corrupt files. */
function forge(header: unknown, data: Uint8Array, headerText = JSON.stringify(header)): Uint8Array {
  const json = new TextEncoder().encode(headerText);
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

function rejects(bytes: Uint8Array, code: string, pattern: RegExp): void {
  assert.throws(
    () => readSafetensors(bytes, 'bad.safetensors'),
    (e: unknown) => e instanceof AdvclipError && e.code === code && pattern.test(e.message) && e.message.includes('bad.safetensors'),
  );
}

const sample = {
  b: hostTensor([2, 3], Float32Array.from([1, -2, 3.5, 0, 1e-3, -65504])),
  a: hostTensor([], Float32Array.from([Math.log(10)])),
  c: hostTensor([0, 4], new Float32Array(0)),
};

test('round trip F32 keeps values, shapes and metadata exactly', () => {
  const bytes = writeSafetensors(sample, { metadata: { format: 'pt' } });
  const file = parseSafetensors(bytes, 'x.safetensors');
  assert.deepEqual([...file.tensors.keys()].sort(), ['a', 'b', 'c']);
  for (const [name, t] of Object.entries(sample)) {
    assert.deepEqual(file.tensors.get(name)!.shape, t.shape, name);
    assert.deepEqual(file.tensors.get(name)!.data, t.data, name);
    assert.equal(file.dtypes.get(name), 'F32');
  }
  assert.deepEqual(file.metadata, { format: 'pt' });
});

test('writer lays out like HF: sorted keys, offsets in that order, header padded with spaces to 8 bytes', () => {
  const bytes = writeSafetensors(new Map(Object.entries(sample)));
  const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  assert.equal((8 + n) % 8, 0);
  const text = new TextDecoder().decode(bytes.subarray(8, 8 + n));
  assert.match(text, /^\{.*\} *$/);
  const header = JSON.parse(text);
  assert.deepEqual(Object.keys(header), ['a', 'b', 'c']);
  assert.deepEqual(header.a.data_offsets, [0, 4]);
  assert.deepEqual(header.b.data_offsets, [4, 28]);
  assert.deepEqual(header.c.data_offsets, [28, 28]);
});

test('round trip F16 rounds to the nearest half', () => {
  const bytes = writeSafetensors({ t: hostTensor([4], Float32Array.from([1 / 3, 65504, 70000, -1e-8])) }, { dtype: 'F16' });
  const t = readSafetensors(bytes, 'h.safetensors').get('t')!;
  assert.deepEqual([...t.data], [0.333251953125, 65504, Infinity, -0]);
});

test('F16 conversion: exact for every half, including subnormals, inf and nan', () => {
  for (let h = 0; h < 0x10000; h++) {
    const v = f16BitsToNumber(h);
    if (Number.isNaN(v)) {
      assert.equal((h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0, true);
      assert.ok(Number.isNaN(f16BitsToNumber(numberToF16Bits(v))));
    } else {
      assert.equal(numberToF16Bits(v), h, `half 0x${h.toString(16)}`);
    }
  }
  assert.equal(f16BitsToNumber(0x0001), 2 ** -24);
  assert.equal(f16BitsToNumber(0x03ff), 1023 * 2 ** -24);
  assert.equal(f16BitsToNumber(0x7c00), Infinity);
  assert.equal(f16BitsToNumber(0xfc00), -Infinity);
  // ties go to even: 2^-25 is halfway between 0 and the smallest subnormal
  assert.equal(numberToF16Bits(2 ** -25), 0);
  assert.equal(numberToF16Bits(3 * 2 ** -25), 2);
  assert.equal(numberToF16Bits(1 + 2 ** -11), 0x3c00);
  assert.equal(numberToF16Bits(1 + 3 * 2 ** -11), 0x3c02);
  assert.equal(numberToF16Bits(65520), 0x7c00); // halfway to the next binade overflows
  assert.equal(numberToF16Bits(65519), 0x7bff);
});

test('reads BF16, F16, F64 and integer dtypes into float32', () => {
  const data = new Uint8Array(2 + 2 + 8 + 8 + 1);
  const view = new DataView(data.buffer);
  view.setUint16(0, 0x3fc0, true); // bf16 1.5
  view.setUint16(2, 0xc000, true); // f16 -2
  view.setFloat64(4, 0.1, true);
  view.setBigInt64(12, -7n, true);
  data[20] = 1;
  const bytes = forge(
    {
      bf: { dtype: 'BF16', shape: [1], data_offsets: [0, 2] },
      h: { dtype: 'F16', shape: [1], data_offsets: [2, 4] },
      d: { dtype: 'F64', shape: [1], data_offsets: [4, 12] },
      position_ids: { dtype: 'I64', shape: [1, 1], data_offsets: [12, 20] },
      flag: { dtype: 'BOOL', shape: [1], data_offsets: [20, 21] },
    },
    data,
  );
  const file = parseSafetensors(bytes, 'mixed.safetensors');
  assert.equal(file.tensors.get('bf')!.data[0], 1.5);
  assert.equal(file.tensors.get('h')!.data[0], -2);
  assert.equal(file.tensors.get('d')!.data[0], Math.fround(0.1));
  assert.equal(file.tensors.get('position_ids')!.data[0], -7);
  assert.equal(file.tensors.get('flag')!.data[0], 1);
  assert.equal(file.dtypes.get('bf'), 'BF16');
});

test('F32 data at an unaligned offset decodes (copied), aligned data is shared', () => {
  const data = new Uint8Array(8);
  new DataView(data.buffer).setFloat32(0, 1.25, true);
  new DataView(data.buffer).setFloat32(4, -3, true);
  const header = { w: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } };
  for (const pad of ['', ' ', '  ', '   ']) {
    const t = readSafetensors(forge(header, data, JSON.stringify(header) + pad), 'u.safetensors').get('w')!;
    assert.deepEqual([...t.data], [1.25, -3], `header padded by ${pad.length}`);
  }
});

const four = new Uint8Array(8);
const entry = (dtype: string, shape: number[], offsets: number[]) => ({ dtype, shape, data_offsets: offsets });

test('rejects a file shorter than the length prefix', () => {
  rejects(new Uint8Array(5), 'DATA_LOSS', /too short/);
});

test('rejects a header length beyond the file', () => {
  const bytes = forge({ a: entry('F32', [2], [0, 8]) }, four);
  new DataView(bytes.buffer).setBigUint64(0, BigInt(bytes.length), true);
  rejects(bytes, 'DATA_LOSS', /header claims/);
});

test('rejects a header length over 100 MB as RESOURCE_EXHAUSTED', () => {
  const bytes = forge({}, new Uint8Array(0));
  new DataView(bytes.buffer).setBigUint64(0, 2n ** 40n, true);
  rejects(bytes, 'RESOURCE_EXHAUSTED', /exceeds/);
});

test('rejects invalid JSON and a non-object header', () => {
  rejects(forge(null, four, '{"a": '), 'DATA_LOSS', /not valid UTF-8 JSON/);
  rejects(forge([1, 2], new Uint8Array(0)), 'DATA_LOSS', /must be a JSON object/);
  const notUtf8 = forge({ ab: entry('F32', [0], [0, 0]) }, new Uint8Array(0));
  notUtf8[10] = 0xff; // inside the name "ab"
  rejects(notUtf8, 'DATA_LOSS', /not valid UTF-8 JSON/);
});

test('rejects an unknown dtype, naming the tensor', () => {
  rejects(forge({ w: entry('F8_E4M3', [8], [0, 8]) }, four), 'DATA_LOSS', /tensor "w" has unsupported dtype "F8_E4M3"/);
});

test('rejects bad shapes and bad offsets', () => {
  rejects(forge({ w: entry('F32', [-1], [0, 8]) }, four), 'DATA_LOSS', /"w" has invalid shape/);
  rejects(forge({ w: entry('F32', [2], [8, 0]) }, four), 'DATA_LOSS', /"w" has invalid data_offsets/);
  rejects(forge({ w: { dtype: 'F32', shape: [2] } }, four), 'DATA_LOSS', /"w" has invalid data_offsets/);
  rejects(forge({ w: 3 }, four), 'DATA_LOSS', /"w" has no/);
});

test('rejects offsets that do not match shape × dtype size', () => {
  rejects(forge({ w: entry('F32', [3], [0, 8]) }, four), 'DATA_LOSS', /"w".*needs 12/);
  rejects(forge({ w: entry('F16', [2], [0, 8]) }, four), 'DATA_LOSS', /"w".*needs 4/);
});

test('rejects truncated data', () => {
  rejects(forge({ w: entry('F32', [4], [0, 16]) }, four), 'DATA_LOSS', /"w".*truncated/);
});

test('rejects overlapping tensors', () => {
  rejects(
    forge({ a: entry('F32', [2], [0, 8]), b: entry('F32', [1], [4, 8]) }, four),
    'DATA_LOSS',
    /overlaps/,
  );
});

test('rejects data the tensors do not cover: a gap or trailing bytes', () => {
  rejects(forge({ a: entry('F32', [1], [4, 8]) }, four), 'DATA_LOSS', /belong to no tensor/);
  rejects(forge({ a: entry('F32', [1], [0, 4]) }, four), 'DATA_LOSS', /cover 4 bytes of a 8-byte/);
});

test('rejects non-string metadata', () => {
  rejects(forge({ __metadata__: { n: 3 } }, new Uint8Array(0)), 'DATA_LOSS', /__metadata__ "n"/);
});

/** Any input either parses or fails with our typed error: never a RangeError, TypeError or hang. */
function parsesOrAdvclipError(bytes: Uint8Array): boolean {
  try {
    parseSafetensors(bytes, 'fuzz.safetensors');
    return true;
  } catch (e) {
    if (e instanceof AdvclipError) return true;
    throw e;
  }
}

test('fuzz: random bytes parse or throw AdvclipError', () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 256 }), parsesOrAdvclipError), { numRuns: 300, seed: 1 });
});

test('fuzz: mutated valid files parse or throw AdvclipError', () => {
  const valid = writeSafetensors({ ...sample, d: hostTensor([3], Float32Array.from([1, 2, 3])) }, { metadata: { k: 'v' } });
  const mutation = fc.record({
    flips: fc.array(fc.tuple(fc.nat(valid.length - 1), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }),
    cut: fc.nat(valid.length),
  });
  fc.assert(
    fc.property(mutation, ({ flips, cut }) => {
      const bytes = valid.slice(0, cut === 0 ? valid.length : cut);
      for (const [i, v] of flips) if (i < bytes.length) bytes[i] = v;
      return parsesOrAdvclipError(bytes);
    }),
    { numRuns: 300, seed: 2 },
  );
});

test('fuzz: forged headers with random entries parse or throw AdvclipError', () => {
  const anyJson = fc.oneof(fc.integer({ min: -5, max: 40 }), fc.constant(2 ** 60), fc.string({ maxLength: 4 }), fc.constant(null));
  const forged = fc.dictionary(
    fc.string({ maxLength: 3 }),
    fc.record({
      dtype: fc.oneof(fc.constantFrom('F32', 'F16', 'BF16', 'I64', 'X'), anyJson),
      shape: fc.oneof(fc.array(fc.integer({ min: -1, max: 5 }), { maxLength: 3 }), anyJson),
      data_offsets: fc.oneof(fc.array(fc.integer({ min: -1, max: 40 }), { maxLength: 3 }), anyJson),
    }),
    { maxKeys: 4 },
  );
  fc.assert(
    fc.property(forged, fc.uint8Array({ maxLength: 40 }), (header, data) => parsesOrAdvclipError(forge(header, data))),
    { numRuns: 300, seed: 3 },
  );
});
