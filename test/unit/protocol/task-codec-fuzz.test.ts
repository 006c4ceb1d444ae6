/**
 * Fuzz of Task and TaskResult decoding (task-codec.ts) through protobuf
 * bytes, as a peer's message arrives: random bytes and mutated valid
 * messages either decode to something that fits the round or fail with a
 * typed error — an InvalidResult with a reason for results — never a
 * TypeError, RangeError or a result with the wrong chunks or shapes.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { AdvclipError } from '../../../services/core/errors.ts';
import type { RoundTask } from '../../../services/core/shard.ts';
import type { Task__Output } from '../../../services/protocol/generated/advclip/v1/Task.ts';
import type { TaskResult__Output } from '../../../services/protocol/generated/advclip/v1/TaskResult.ts';
import { decodeResult, decodeTask, encodeResult, encodeTask, InvalidResult, RejectReasons } from '../../../services/protocol/task-codec.ts';
import { envelope, f, shapes, work } from './codec-fixtures.ts';


const taskBytes = (t: ReturnType<typeof encodeTask>) => work.responseSerialize({ task: t });
const resultBytes = (r: ReturnType<typeof encodeResult>) => work.requestSerialize({ result: r });
const asTask = (bytes: Uint8Array): Task__Output | undefined => work.responseDeserialize(Buffer.from(bytes)).task ?? undefined;
const asResult = (bytes: Uint8Array): TaskResult__Output | undefined => work.requestDeserialize(Buffer.from(bytes)).result ?? undefined;

const deltaTask: RoundTask = { step: 3, round: 1, kind: 'delta', chunks: [{ index: 0, samples: [0, 1] }, { index: 2, samples: [4, 5] }], delta: f(12, -0.25), textGrad: null };
const loraTask: RoundTask = { step: 3, round: 2, kind: 'lora', chunks: [{ index: 1, samples: [2, 3] }], delta: f(12), textGrad: null };
const timing = { compute_ms: 1, fetch_ms: 0, decode_ms: 0, encode_ms: 0, total_ms: 2 };

const validDeltaResult = resultBytes(
  encodeResult('3.1.7', deltaTask, { chunks: [0, 2].map((index) => ({ index, count: 2, advLossSum: 1.5, cleanLossSum: NaN, grads: new Map([['delta', f(12)]]) })), localDelta: null }, timing, shapes),
);
const loraGrads = new Map<string, Float32Array>([['v.A', f(2)], ['v.B', f(2)], ['text_features', f(12)]]);
const validLoraResult = resultBytes(encodeResult('3.2.8', loraTask, { chunks: [{ index: 1, count: 2, advLossSum: 0.5, cleanLossSum: 0.25, grads: loraGrads }], localDelta: null }, timing, shapes));
const validTask = taskBytes(encodeTask(deltaTask, envelope, shapes));

/** Decodes a result for `task`; anything else than an accepted, fitting result must be an InvalidResult with a known reason. */
function resultDecodesOrRefused(bytes: Uint8Array, task: RoundTask): boolean {
  let message: TaskResult__Output | undefined;
  try {
    message = asResult(bytes);
  } catch {
    return true; // not protobuf: grpc-js answers INTERNAL before our code runs
  }
  if (!message) return true;
  try {
    const r = decodeResult(message, task, shapes);
    assert.deepEqual(r.chunks.map((c) => c.index), task.chunks.map((c) => c.index).sort((a, b) => a - b));
    for (const c of r.chunks) {
      assert.ok(Number.isFinite(c.advLossSum));
      assert.equal(c.count, task.chunks.find((k) => k.index === c.index)!.samples.length);
      for (const [name, data] of c.grads) {
        const shape = name === 'delta' ? shapes.delta : name === 'text_features' ? shapes.textFeatures : shapes.vision.get(name);
        assert.ok(shape, `unexpected tensor ${name}`);
        assert.equal(data.length, shape.reduce((a, b) => a * b, 1));
        assert.ok(data.every(Number.isFinite));
      }
    }
  } catch (err) {
    if (!(err instanceof InvalidResult)) throw err;
    assert.ok(RejectReasons.includes(err.reason));
  }
  return true;
}

function taskDecodesOrRefused(bytes: Uint8Array): boolean {
  let message: Task__Output | undefined;
  try {
    message = asTask(bytes);
  } catch {
    return true;
  }
  if (!message) return true;
  try {
    const { task } = decodeTask(message, shapes);
    if (task.delta) assert.equal(task.delta.length, 12);
    assert.ok((task.delta ?? []).every(Number.isFinite) && (task.textGrad ?? []).every(Number.isFinite), 'a decoded task carries only finite δ and text gradients');
    assert.ok(task.kind === 'text' ? task.chunks.length === 0 : task.chunks.length > 0);
    assert.equal(new Set(task.chunks.map((c) => c.index)).size, task.chunks.length);
    assert.ok(task.chunks.every((c) => c.samples.length > 0));
  } catch (err) {
    if (!(err instanceof AdvclipError)) throw err;
  }
  return true;
}

const mutation = (length: number) =>
  fc.record({
    flips: fc.array(fc.tuple(fc.nat(length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }),
    // mostly whole messages: a cut almost always breaks the protobuf framing before our code runs
    cut: fc.oneof({ arbitrary: fc.constant(0), weight: 4 }, { arbitrary: fc.nat(length), weight: 1 }),
  });
const mutate = (valid: Uint8Array, { flips, cut }: { flips: [number, number][]; cut: number }) => {
  const bytes = Uint8Array.from(valid.subarray(0, cut === 0 ? valid.length : cut));
  for (const [i, v] of flips) if (i < bytes.length) bytes[i] = v;
  return bytes;
};

test('the valid messages the fuzz starts from decode', () => {
  assert.equal(decodeResult(asResult(validDeltaResult)!, deltaTask, shapes).chunks.length, 2);
  assert.equal(decodeResult(asResult(validLoraResult)!, loraTask, shapes).chunks.length, 1);
  assert.equal(decodeTask(asTask(validTask)!, shapes).task.chunks.length, 2);
});

test('fuzz: random bytes as a TaskResult are refused with a reason or decode to a fitting result (300 runs)', () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), fc.boolean(), (bytes, lora) => resultDecodesOrRefused(bytes, lora ? loraTask : deltaTask)), { numRuns: 300, seed: 11 });
});

test('fuzz: mutated δ and LoRA results are refused with a reason or decode to a fitting result (2 × 300 runs)', () => {
  fc.assert(fc.property(mutation(validDeltaResult.length), (m) => resultDecodesOrRefused(mutate(validDeltaResult, m), deltaTask)), { numRuns: 300, seed: 12 });
  fc.assert(fc.property(mutation(validLoraResult.length), (m) => resultDecodesOrRefused(mutate(validLoraResult, m), loraTask)), { numRuns: 300, seed: 13 });
});

test('fuzz: random and mutated Tasks decode to a runnable task or fail with AdvclipError (2 × 300 runs)', () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), taskDecodesOrRefused), { numRuns: 300, seed: 14 });
  fc.assert(fc.property(mutation(validTask.length), (m) => taskDecodesOrRefused(mutate(validTask, m))), { numRuns: 300, seed: 15 });
});

test('fuzz: results with arbitrary field values are refused with a reason or fit the round (300 runs)', () => {
  const tensor = fc.record({
    data: fc.oneof(fc.uint8Array({ maxLength: 64 }).map((u) => Buffer.from(u)), fc.constant(Buffer.from(f(12).buffer))),
    shape: fc.oneof(fc.constantFrom([2, 2, 3], [12], [3, 4], [1, 2], [2, 1]), fc.array(fc.integer({ min: 0, max: 5 }), { maxLength: 4 })),
    dtype: fc.constantFrom('float32', 'float64', ''),
  });
  const name = fc.constantFrom('delta', 'v.A', 'v.B', 'text_features', 't.A', 'evil');
  const chunk = fc.record({
    chunk_index: fc.constantFrom(0, 1, 2, 3),
    count: fc.integer({ min: 0, max: 3 }),
    clean_loss_sum: fc.oneof(fc.double(), fc.constant(NaN)),
    adv_loss_sum: fc.oneof(fc.double(), fc.constant(Infinity)),
    grads: fc.array(fc.record({ name, tensor }), { maxLength: 4 }),
  });
  const result = fc.record({ task_id: fc.constant('3.1.7'), step: fc.constantFrom(2, 3), round: fc.constantFrom(1, 2), chunks: fc.array(chunk, { maxLength: 3 }), shard_tensors: fc.array(fc.record({ name, tensor }), { maxLength: 2 }) });
  fc.assert(
    fc.property(result, fc.boolean(), (r, lora) => resultDecodesOrRefused(resultBytes({ ...r, timing } as never), lora ? loraTask : deltaTask)),
    { numRuns: 300, seed: 16 },
  );
});
