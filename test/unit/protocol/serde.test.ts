import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { AdvclipError } from '../../../services/core/errors.ts';
import { hostTensor } from '../../../services/core/tensor.ts';
import { decodeNamedTensors, decodeTensor, encodeNamedTensor, encodeTensor } from '../../../services/protocol/serde.ts';
import { coordinatorService } from '../../../services/protocol/proto-loader.ts';

const bitsOf = (data: Float32Array) => new Uint32Array(data.buffer, data.byteOffset, data.length);
const rejects = (fn: () => unknown, code: string, pattern: RegExp) =>
  assert.throws(fn, (err: unknown) => err instanceof AdvclipError && err.code === code && pattern.test(err.message));

test('a tensor survives encode → protobuf bytes → decode bit for bit (NaN payloads, -0 included)', () => {
  const data = new Float32Array([1.5, -0, NaN, Infinity, -3.25e-38, 7]);
  new Uint32Array(data.buffer)[2] = 0x7fc01234; // a NaN with a payload
  const delta = hostTensor([2, 3], data);
  const rpc = coordinatorService().Work;
  const wire = rpc.responseSerialize({ task: { task_id: 't', delta: encodeTensor(delta) } });
  const back = rpc.responseDeserialize(wire);
  const decoded = decodeTensor(back.task!.delta, { name: 'delta', expectShape: [2, 3] });
  assert.deepEqual(decoded.shape, [2, 3]);
  assert.deepEqual(bitsOf(decoded.data), bitsOf(data));
});

test('the bytes on the wire are little-endian float32', () => {
  const encoded = encodeTensor(hostTensor([1], new Float32Array([1])));
  assert.deepEqual([...encoded.data], [0x00, 0x00, 0x80, 0x3f]);
  assert.equal(encoded.dtype, 'float32');
});

test('decode copies into an aligned array it owns, even from an odd offset', () => {
  const backing = Buffer.alloc(13);
  const bytes = backing.subarray(1); // byteOffset 1: not float-aligned
  bytes.writeFloatLE(2.5, 0);
  bytes.writeFloatLE(-1, 4);
  bytes.writeFloatLE(8, 8);
  const decoded = decodeTensor({ data: bytes, shape: [3], dtype: 'float32' }, { name: 'x' });
  assert.deepEqual([...decoded.data], [2.5, -1, 8]);
  bytes.writeFloatLE(99, 0);
  assert.equal(decoded.data[0], 2.5);
});

test('a scalar and an empty tensor round-trip', () => {
  for (const t of [hostTensor([], new Float32Array([4])), hostTensor([0, 5], new Float32Array(0))]) {
    const back = decodeTensor(encodeTensor(t), { name: 't' });
    assert.deepEqual(back.shape, t.shape);
    assert.deepEqual([...back.data], [...t.data]);
  }
});

test('bad messages are INVALID_ARGUMENT naming the tensor and what is wrong', () => {
  const ok = encodeTensor(hostTensor([2, 2], new Float32Array(4)));
  rejects(() => decodeTensor(undefined, { name: 'delta' }), 'INVALID_ARGUMENT', /"delta" is missing/);
  rejects(() => decodeTensor({ ...ok, dtype: 'float16' }, { name: 'delta' }), 'INVALID_ARGUMENT', /"delta" has dtype "float16"/);
  rejects(() => decodeTensor({ ...ok, dtype: '' }, { name: 'delta' }), 'INVALID_ARGUMENT', /dtype ""/);
  rejects(() => decodeTensor({ ...ok, data: ok.data.subarray(1) }, { name: 'g' }), 'INVALID_ARGUMENT', /"g" has 15 bytes, expected 16 for shape \[2,2\]/);
  rejects(() => decodeTensor({ ...ok, shape: [2, -2] }, { name: 'g' }), 'INVALID_ARGUMENT', /invalid dimension -2/);
  rejects(() => decodeTensor({ ...ok, shape: [2.5] }, { name: 'g' }), 'INVALID_ARGUMENT', /invalid dimension 2.5/);
  rejects(
    () => decodeTensor(ok, { name: 'text.layers.3.q_proj.lora_A.weight', expectShape: [2, 512] }),
    'INVALID_ARGUMENT',
    /"text.layers.3.q_proj.lora_A.weight" has shape \[2,2\], expected \[2,512\]/,
  );
});

test('oversized tensors are RESOURCE_EXHAUSTED before any allocation', () => {
  const tiny = encodeTensor(hostTensor([1], new Float32Array(1)));
  rejects(() => decodeTensor({ ...tiny, shape: [65536, 65536, 65536] }, { name: 'huge' }), 'RESOURCE_EXHAUSTED', /"huge"/);
  rejects(() => decodeTensor({ ...tiny, shape: [1024] }, { name: 'x', maxBytes: 1024 }), 'RESOURCE_EXHAUSTED', /4096 bytes, above the limit of 1024/);
});

test('rejectNonFinite names the tensor and the first bad index', () => {
  const bad = encodeTensor(hostTensor([3], new Float32Array([0, 1, NaN])));
  assert.equal(decodeTensor(bad, { name: 'g' }).data.length, 3);
  rejects(() => decodeTensor(bad, { name: 'worker-2 grads', rejectNonFinite: true }), 'INVALID_ARGUMENT', /"worker-2 grads" has a non-finite value \(NaN\) at flat index 2/);
  const inf = encodeTensor(hostTensor([1], new Float32Array([-Infinity])));
  rejects(() => decodeTensor(inf, { name: 'g', rejectNonFinite: true }), 'INVALID_ARGUMENT', /-Infinity/);
});

test('named tensors: expected names and shapes are enforced, duplicates refused', () => {
  const a = hostTensor([2, 3], new Float32Array(6).fill(1));
  const b = hostTensor([3, 2], new Float32Array(6).fill(2));
  const expectShapes = new Map([['A', [2, 3]], ['B', [3, 2]]]);
  const list = [encodeNamedTensor('A', a), encodeNamedTensor('B', b)];
  const map = decodeNamedTensors(list, { context: 'chunk 0', expectShapes });
  assert.deepEqual([...map.keys()], ['A', 'B']);
  rejects(() => decodeNamedTensors([list[0], list[0]], { context: 'chunk 0' }), 'INVALID_ARGUMENT', /chunk 0: tensor "A" appears twice/);
  rejects(() => decodeNamedTensors([list[0]], { context: 'chunk 0', expectShapes }), 'INVALID_ARGUMENT', /"B" is missing/);
  rejects(() => decodeNamedTensors([...list, encodeNamedTensor('C', a)], { context: 'c', expectShapes }), 'INVALID_ARGUMENT', /unexpected tensor "C"/);
  rejects(() => decodeNamedTensors([encodeNamedTensor('A', b), list[1]], { context: 'c', expectShapes }), 'INVALID_ARGUMENT', /"c: A" has shape \[3,2\], expected \[2,3\]/);
});

test('encode refuses a tensor whose values do not fill its shape', () => {
  rejects(() => encodeTensor({ shape: [2, 2], data: new Float32Array(3) }), 'INVALID_ARGUMENT', /3 values as shape \[2,2\]/);
});

const smallShape = fc.array(fc.integer({ min: 0, max: 6 }), { maxLength: 4 });

test('fuzz: any float32 tensor round-trips exactly (300 runs)', () => {
  fc.assert(
    fc.property(smallShape, fc.integer(), (shape, seed) => {
      const size = shape.reduce((a, b) => a * b, 1);
      const bits = Uint32Array.from({ length: size }, (_, i) => Math.imul(seed ^ i, 2654435761) >>> 0);
      const tensor = hostTensor(shape, new Float32Array(bits.buffer));
      const back = decodeTensor(encodeTensor(tensor), { name: 'fuzz', expectShape: shape });
      assert.deepEqual(bitsOf(back.data), bits);
    }),
    { numRuns: 300 },
  );
});

test('fuzz: arbitrary messages decode to a valid tensor or throw AdvclipError (300 runs)', () => {
  const dim = fc.oneof(fc.integer({ min: -3, max: 8 }), fc.double(), fc.constant(2 ** 32), fc.string(), fc.constant(null));
  const message = fc.oneof(
    fc.record(
      {
        data: fc.oneof(fc.uint8Array({ maxLength: 260 }).map((u) => Buffer.from(u)), fc.string(), fc.constant(null)),
        shape: fc.oneof(fc.array(dim, { maxLength: 10 }), fc.anything()),
        dtype: fc.oneof(fc.constant('float32'), fc.string(), fc.anything()),
      },
      { requiredKeys: [] },
    ),
    fc.anything(),
  );
  fc.assert(
    fc.property(message, fc.boolean(), (msg, rejectNonFinite) => {
      try {
        const t = decodeTensor(msg as never, { name: 'fuzz', rejectNonFinite, maxBytes: 1 << 16 });
        assert.ok(t.shape.every((d) => Number.isSafeInteger(d) && d >= 0));
        assert.equal(t.data.length, t.shape.reduce((a, b) => a * b, 1));
        assert.equal(t.data.byteOffset, 0);
        if (rejectNonFinite) assert.ok(t.data.every(Number.isFinite));
      } catch (err) {
        if (!(err instanceof AdvclipError)) throw err;
      }
    }),
    { numRuns: 300 },
  );
});

/** A length-delimited protobuf field: its tag, its length as a varint, its bytes. */
function lengthDelimited(field: number, body: Uint8Array): Buffer {
  const varint = (n: number) => {
    const out: number[] = [];
    for (; n >= 0x80; n >>>= 7) out.push((n & 0x7f) | 0x80);
    return [...out, n];
  };
  return Buffer.from([...varint((field << 3) | 2), ...varint(body.length), ...body]);
}

test('fuzz: random protobuf bytes never yield a tensor that violates its own shape (300 runs)', () => {
  const rpc = coordinatorService().Work;
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
      // the random bytes are the Tensor in Task.delta (field 7) of CoordinatorMessage.task (field 1)
      let message;
      try {
        message = rpc.responseDeserialize(lengthDelimited(1, lengthDelimited(7, bytes)));
      } catch {
        return; // protobuf-level garbage: grpc-js answers INTERNAL before our code runs
      }
      try {
        const t = decodeTensor(message.task?.delta, { name: 'delta', maxBytes: 1 << 16 });
        assert.equal(t.data.length, t.shape.reduce((a, b) => a * b, 1));
      } catch (err) {
        if (!(err instanceof AdvclipError)) throw err;
      }
    }),
    { numRuns: 300 },
  );
});
