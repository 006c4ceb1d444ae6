import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeResult, decodeTask, encodeResult, encodeTask, InvalidResult } from '../../../services/protocol/task-codec.ts';
import type { RoundTask } from '../../../services/core/shard.ts';
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
