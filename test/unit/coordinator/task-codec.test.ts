import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeResult, decodeTask, encodeResult, encodeTask, InvalidResult, maxMessageBytes } from '../../../services/protocol/task-codec.ts';
import type { RoundTask } from '../../../services/core/shard.ts';
import type { RoundShapes } from '../../../services/protocol/task-codec.ts';
import type { Task__Output } from '../../../services/protocol/generated/advclip/v1/Task.ts';
import type { TaskResult__Output } from '../../../services/protocol/generated/advclip/v1/TaskResult.ts';
import { envelope, f, shapes, work } from '../protocol/codec-fixtures.ts';


/** Through protobuf bytes and back, as on the wire (the Work stream's own serializers). */
const wireTask = (t: ReturnType<typeof encodeTask>): Task__Output => work.responseDeserialize(work.responseSerialize({ task: t })).task!;
const wireResult = (r: ReturnType<typeof encodeResult>): TaskResult__Output => work.requestDeserialize(work.requestSerialize({ result: r })).result!;

const task: RoundTask = { step: 3, round: 1, kind: 'delta', chunks: [{ index: 2, samples: [4, 5] }, { index: 0, samples: [0, 1] }], delta: f(12, -0.25), textGrad: null };

test('a task survives encode → decode, chunks in chunk order, δ bit for bit', () => {
  const decoded = decodeTask(wireTask(encodeTask(task, envelope, shapes)), shapes);
  assert.deepEqual(decoded.envelope, envelope);
  assert.deepEqual(decoded.task.chunks.map((c) => c.index), [0, 2]);
  assert.deepEqual([...decoded.task.delta!], [...task.delta!]);
  assert.equal(decoded.task.kind, 'delta');
});

const resultOf = (grad: Float32Array, loss = 1.5) =>
  wireResult(encodeResult('3.1.7', task, { chunks: [0, 2].map((index) => ({ index, count: 2, advLossSum: loss, cleanLossSum: NaN, grads: new Map([['delta', grad]]) })), localDelta: null }, { compute_ms: 1, fetch_ms: 0, decode_ms: 0, encode_ms: 0, total_ms: 2 }, shapes));

test('a result decodes to the chunk sums it carried', () => {
  const r = decodeResult(resultOf(f(12)), task, shapes);
  assert.deepEqual(r.chunks.map((c) => c.index), [0, 2]);
  assert.deepEqual([...r.chunks[0].grads.get('delta')!], [...f(12)]);
  assert.ok(Number.isNaN(r.chunks[0].cleanLossSum));
});

test('results that do not fit the round are refused with a reason', () => {
  const reason = (fn: () => unknown) => {
    try {
      fn();
    } catch (err) {
      assert.ok(err instanceof InvalidResult, String(err));
      return err.reason;
    }
    return 'accepted';
  };
  const nan = f(12);
  nan[3] = NaN;
  assert.equal(reason(() => decodeResult(resultOf(nan), task, shapes)), 'non_finite');
  assert.equal(reason(() => decodeResult(resultOf(f(12), Infinity), task, shapes)), 'non_finite');
  assert.equal(reason(() => decodeResult({ ...resultOf(f(12)), round: 0 }, task, shapes)), 'stale');
  const short = resultOf(f(12));
  assert.equal(reason(() => decodeResult({ ...short, chunks: short.chunks.slice(1) } as TaskResult__Output, task, shapes)), 'bad_chunks');
  const wrongShape = resultOf(f(12));
  (wrongShape.chunks[0].grads[0].tensor as { shape: number[] }).shape = [12];
  assert.equal(reason(() => decodeResult(wrongShape, task, shapes)), 'bad_shape');
});

test('a task whose δ or text gradient holds NaN or ±Inf is refused, naming the task, the tensor and the first bad index (errors row 13)', () => {
  const textTask: RoundTask = { step: 3, round: 3, kind: 'text', chunks: [{ index: 0, samples: [0, 1, 2] }], delta: null, textGrad: f(12) };
  for (const [bad, shown] of [[NaN, 'NaN'], [Infinity, 'Infinity'], [-Infinity, '-Infinity']] as const) {
    const delta = f(12, -0.25);
    delta[5] = bad;
    assert.throws(
      () => decodeTask(wireTask(encodeTask({ ...task, delta }, envelope, shapes)), shapes),
      (e: unknown) => (e as { code?: string }).code === 'INVALID_ARGUMENT' && new RegExp(`tensor "task 3\\.1\\.7 delta" has a non-finite value \\(${shown}\\) at flat index 5`).test((e as Error).message),
      `δ with ${shown}`,
    );
    const textGrad = f(12);
    textGrad[11] = bad;
    assert.throws(
      () => decodeTask(wireTask(encodeTask({ ...textTask, textGrad }, envelope, shapes)), shapes),
      (e: unknown) => (e as { code?: string }).code === 'INVALID_ARGUMENT' && new RegExp(`tensor "task 3\\.1\\.7 text_grad" has a non-finite value \\(${shown}\\) at flat index 11`).test((e as Error).message),
      `text_grad with ${shown}`,
    );
  }
});

test('a task whose δ is not float32 is refused with INVALID_ARGUMENT naming the tensor (errors row 10, coordinator → worker)', () => {
  const message = encodeTask(task, envelope, shapes);
  const float64 = { ...message, delta: { ...message.delta!, dtype: 'float64' } };
  assert.throws(
    () => decodeTask(wireTask(float64), shapes),
    (e: unknown) => (e as { code?: string }).code === 'INVALID_ARGUMENT' && /tensor "task 3\.1\.7 delta" has dtype "float64", expected "float32"/.test((e as Error).message),
  );
});

test('each misfit of a result is refused by its own check, with its reason and message (errors rows 14, 15)', () => {
  const refusal = (message: TaskResult__Output): InvalidResult => {
    try {
      decodeResult(message, task, shapes);
    } catch (err) {
      assert.ok(err instanceof InvalidResult, String(err));
      return err;
    }
    assert.fail('accepted');
  };
  const edited = (edit: (r: TaskResult__Output) => void) => {
    const r = resultOf(f(12));
    edit(r);
    return r;
  };
  const cases: [string, TaskResult__Output, string, RegExp][] = [
    ['missing tensor', edited((r) => (r.chunks[0].grads = [])), 'bad_shape', /chunk 0: tensor "delta" is missing/],
    ['unexpected tensor', edited((r) => r.chunks[0].grads.push({ ...r.chunks[0].grads[0], name: 'evil' })), 'bad_shape', /unexpected tensor "evil"/],
    ['chunk not assigned', edited((r) => (r.chunks[1].chunk_index = 999)), 'bad_chunks', /chunk 999 was not assigned or appears twice/],
    ['chunk twice', edited((r) => (r.chunks[1].chunk_index = 0)), 'bad_chunks', /chunk 0 was not assigned or appears twice/],
    ['wrong sample count', edited((r) => (r.chunks[0].count = 3)), 'bad_chunks', /chunk 0 counts 3 samples, expected 2/],
  ];
  for (const [what, message, reason, pattern] of cases) {
    const err = refusal(message);
    assert.equal(err.reason, reason, what);
    assert.match(err.message, pattern, what);
  }
});

test('maxMessageBytes holds the largest result of a run (every chunk of a LoRA round from one worker), and not many times more', () => {
  const sizeOf = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
  // ViT-B-like: q, k, v of 12 image layers at rank 2, 100 classes
  const sites = Array.from({ length: 36 }, (_, i) => `vision.${i}`);
  const big: RoundShapes = {
    delta: [224, 224, 3],
    textFeatures: [100, 512],
    vision: new Map<string, number[]>(sites.flatMap((k) => [[`${k}.A`, [2, 768]], [`${k}.B`, [768, 2]]])),
    text: new Map<string, number[]>(sites.flatMap((k) => [[`t${k}.A`, [2, 512]], [`t${k}.B`, [512, 2]]])),
  };
  const shapes = big;
  const image = 8;
  const lora: RoundTask = { step: 0, round: 2, kind: 'lora', chunks: Array.from({ length: image }, (_, index) => ({ index, samples: [2 * index, 2 * index + 1] })), delta: f(sizeOf(shapes.delta)), textGrad: null };
  const grads = new Map([...[...shapes.vision].map(([k, s]) => [k, f(sizeOf(s))] as const), ['text_features', f(sizeOf(shapes.textFeatures))] as const]);
  const result = encodeResult('0.2.1', lora, { chunks: lora.chunks.map((c) => ({ index: c.index, count: 2, advLossSum: 1, cleanLossSum: 1, grads })), localDelta: null }, { compute_ms: 1, fetch_ms: 0, decode_ms: 0, encode_ms: 0, total_ms: 1 }, shapes);
  const bytes = work.requestSerialize({ result }).byteLength;
  const limit = maxMessageBytes(shapes, { image, text: 1, samples: 2 * image });
  assert.ok(bytes <= limit, `${bytes} > ${limit}`);
  assert.ok(limit <= 1.5 * bytes + 1024 * 1024, `${limit} is far above ${bytes}`);
});

test('an EVAL round carries per-chunk correct counts and loss sums, no tensors; more correct than samples is refused', () => {
  const evalTask: RoundTask = { step: 4, round: 0, kind: 'eval', chunks: [{ index: 1, samples: [2, 3] }, { index: 0, samples: [0, 1] }], delta: null, textGrad: null };
  const sent = decodeTask(wireTask(encodeTask(evalTask, envelope, shapes)), shapes);
  assert.equal(sent.task.kind, 'eval');
  assert.equal(sent.task.delta, null);
  const timing = { compute_ms: 1, fetch_ms: 0, decode_ms: 0, encode_ms: 0, total_ms: 2 };
  const answer = (correct: number) =>
    wireResult(encodeResult('4.0.1', evalTask, { chunks: [0, 1].map((index) => ({ index, count: 2, advLossSum: 0.5 + index, cleanLossSum: NaN, grads: new Map(), correct: correct - index })), localDelta: null }, timing, shapes));
  const r = decodeResult(answer(2), evalTask, shapes);
  assert.deepEqual(r.chunks.map((c) => [c.index, c.correct, c.advLossSum, c.grads.size]), [
    [0, 2, 0.5, 0],
    [1, 1, 1.5, 0],
  ]);
  assert.throws(() => decodeResult(answer(3), evalTask, shapes), (e: unknown) => e instanceof InvalidResult && e.reason === 'bad_chunks' && /3 correct of 2 samples/.test(e.message));
});
