/**
 * Structure-aware fuzz of the task codec: valid Task and TaskResult
 * messages, mutated field by field (a kind, a hash, a tensor's dtype, shape,
 * bytes or values, a chunk's index, count or loss, step and round), then
 * sent through protobuf bytes as on the wire. Random bytes mostly stop in
 * the protobuf decoder; these reach our decoders, and the test counts which
 * check refused each case, asserts that nearly all reached our code and
 * that every check was reached, and that a refusal is always a typed error
 * (an InvalidResult with a reason for results) and an acceptance always fits
 * the round.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { AdvclipError } from '../../../services/core/errors.ts';
import type { RoundTask } from '../../../services/core/shard.ts';
import type { Task } from '../../../services/protocol/generated/advclip/v1/Task.ts';
import type { TaskResult } from '../../../services/protocol/generated/advclip/v1/TaskResult.ts';
import type { Tensor } from '../../../services/protocol/generated/advclip/v1/Tensor.ts';
import { decodeResult, decodeTask, encodeResult, encodeTask, InvalidResult } from '../../../services/protocol/task-codec.ts';
import { envelope, f, shapes, work } from './codec-fixtures.ts';

const RUNS = 600;

/** Which check stopped a case: the first pattern its message matches. */
function checkOf(message: string, checks: readonly (readonly [string, RegExp])[]): string {
  return checks.find(([, pattern]) => pattern.test(message))?.[0] ?? `other: ${message}`;
}

class Tally {
  readonly counts = new Map<string, number>();
  add(key: string): void {
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
  }
  get(key: string): number {
    return this.counts.get(key) ?? 0;
  }
  get total(): number {
    return [...this.counts.values()].reduce((a, b) => a + b, 0);
  }
  toString(): string {
    return [...this.counts].sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, v]) => `${k} ${v}`).join(', ');
  }
}

/** A tensor mutation: what a faulty or hostile peer could put in a Tensor message. */
const tensorMutation = fc.oneof(
  fc.constantFrom('float64', 'bfloat16', '').map((dtype) => (t: Tensor) => void (t.dtype = dtype)),
  fc.array(fc.integer({ min: 0, max: 6 }), { maxLength: 3 }).map((shape) => (t: Tensor) => void (t.shape = shape)),
  fc.array(fc.nat(4), { minLength: 9, maxLength: 10 }).map((shape) => (t: Tensor) => void (t.shape = shape)),
  fc.integer({ min: -8, max: 8 }).filter((n) => n !== 0).map((n) => (t: Tensor) => {
    const data = Buffer.from(t.data as Uint8Array);
    t.data = n < 0 ? data.subarray(0, Math.max(0, data.length + n)) : Buffer.concat([data, Buffer.alloc(n)]);
  }),
  fc.tuple(fc.nat(11), fc.constantFrom(NaN, Infinity, -Infinity)).map(([i, v]) => (t: Tensor) => {
    const data = Buffer.from(t.data as Uint8Array);
    if (4 * i + 4 <= data.length) data.writeFloatLE(v, 4 * i);
    t.data = data;
  }),
);

const deltaTask: RoundTask = { step: 3, round: 1, kind: 'delta', chunks: [{ index: 0, samples: [0, 1] }, { index: 2, samples: [4, 5] }], delta: f(12, -0.25), textGrad: null };
const textTask: RoundTask = { step: 3, round: 3, kind: 'text', chunks: [{ index: 0, samples: [0, 1, 2] }], delta: null, textGrad: f(12) };

type TaskEdit = (t: Task) => void;
const taskMutation: fc.Arbitrary<TaskEdit> = fc.oneof(
  fc.integer({ min: 0, max: 7 }).map((k) => (t: Task) => void (t.round_kind = k as never)),
  fc.constantFrom('', 'A'.repeat(64), 'a'.repeat(63), 'g'.repeat(64)).map((h) => (t: Task) => void (t.adapter_sha256 = h)),
  tensorMutation.map((edit) => (t: Task) => t.delta && edit(t.delta)),
  tensorMutation.map((edit) => (t: Task) => t.text_grad && edit(t.text_grad)),
  fc.constant((t: Task) => void delete t.delta),
  fc.constant((t: Task) => void delete t.text_grad),
  fc.constant((t: Task) => void (t.chunks = [])),
  fc.constant((t: Task) => void (t.chunks = [...t.chunks!, { ...t.chunks![0] }])),
  fc.constant((t: Task) => void (t.chunks = t.chunks!.map((c) => ({ ...c, sample_indices: [] })))),
);

const TASK_CHECKS = [
  ['round kind', /round kind .* is not one a worker computes/],
  ['adapter sha256', /adapter_sha256 is not a SHA-256/],
  ['tensor dtype', /has dtype .* expected "float32"/],
  ['tensor shape', /has shape \[.*\], expected|has rank \d+, above|invalid dimension/],
  ['tensor bytes', /has \d+ bytes, expected|has no byte data/],
  ['non-finite value', /has a non-finite value/],
  ['text task without text_grad', /a TEXT_GRAD task needs text_grad/],
  ['no chunks', /: no chunks/],
  ['chunk twice', /chunk \d+ appears twice/],
  ['chunk without samples', /chunk \d+ has no samples/],
] as const;

test(`structured fuzz: mutated Tasks reach decodeTask and each of its checks; refusals are typed, acceptances runnable (${RUNS} runs)`, (t) => {
  const tally = new Tally();
  fc.assert(
    fc.property(fc.boolean(), fc.array(taskMutation, { minLength: 1, maxLength: 3 }), (text, edits) => {
      const message = encodeTask(text ? textTask : deltaTask, envelope, shapes);
      for (const edit of edits) edit(message);
      let bytes: Buffer;
      try {
        bytes = work.responseSerialize({ task: message });
      } catch {
        tally.add('not serializable');
        return;
      }
      const wire = work.responseDeserialize(bytes).task!;
      tally.add('reached decodeTask');
      try {
        const { task } = decodeTask(wire, shapes);
        tally.add('accepted');
        assert.ok(task.chunks.length > 0 && new Set(task.chunks.map((c) => c.index)).size === task.chunks.length, 'accepted chunks are distinct and not empty');
        assert.ok(task.chunks.every((c) => c.samples.length > 0), 'accepted chunks have samples');
        for (const v of [task.delta, task.textGrad]) if (v) assert.ok(v.length === 12 && v.every(Number.isFinite), 'an accepted δ or text gradient has 12 finite values');
      } catch (err) {
        if (!(err instanceof AdvclipError)) throw err;
        tally.add(`refused: ${checkOf(err.message, TASK_CHECKS)}`);
      }
    }),
    { numRuns: RUNS, seed: 21, endOnFailure: true },
  );
  t.diagnostic(`Task cases: ${tally}`);
  assert.ok(tally.get('reached decodeTask') >= 0.95 * RUNS, `at least 95% reach decodeTask: ${tally}`);
  assert.equal([...tally.counts.keys()].filter((k) => k.startsWith('refused: other')).length, 0, `every refusal is one of the known checks: ${tally}`);
  for (const [check] of TASK_CHECKS) assert.ok(tally.get(`refused: ${check}`) >= 5, `check "${check}" reached at least 5 times: ${tally}`);
  assert.ok(tally.get('accepted') >= 5, `some mutations leave a valid task: ${tally}`);
});

const loraTask: RoundTask = { step: 3, round: 2, kind: 'lora', chunks: [{ index: 1, samples: [2, 3] }, { index: 3, samples: [6, 7] }], delta: f(12), textGrad: null };
const timing = { compute_ms: 1, fetch_ms: 0, decode_ms: 0, encode_ms: 0, total_ms: 2 };
const validResult = (task: RoundTask): TaskResult =>
  encodeResult(
    '3.2.8',
    task,
    {
      chunks: task.chunks.map((c) => ({
        index: c.index,
        count: c.samples.length,
        advLossSum: 0.5,
        cleanLossSum: 0.25,
        grads: task.kind === 'lora' ? new Map([['v.A', f(2)], ['v.B', f(2)], ['text_features', f(12)]]) : new Map([['delta', f(12)]]),
      })),
      localDelta: null,
    },
    timing,
    shapes,
  );

type ResultEdit = (r: TaskResult) => void;
/** Edits chunk i (mod their number), when there is one left. */
const someChunk = (r: TaskResult, i: number, edit: (c: NonNullable<TaskResult['chunks']>[number]) => unknown): void => {
  const chunks = r.chunks!;
  if (chunks.length) edit(chunks[i % chunks.length]);
};
const gradValue = fc.tuple(fc.nat(11), fc.constantFrom(NaN, Infinity, -Infinity));
const resultMutation: fc.Arbitrary<ResultEdit> = fc.oneof(
  { arbitrary: fc.constantFrom(2, 4).map((step) => (r: TaskResult) => void (r.step = step)), weight: 1 },
  { arbitrary: fc.constantFrom(1, 3).map((round) => (r: TaskResult) => void (r.round = round)), weight: 1 },
  { arbitrary: fc.constant((r: TaskResult) => void (r.chunks = r.chunks!.slice(1))), weight: 1 },
  { arbitrary: fc.tuple(fc.nat(3), fc.constantFrom(0, 1, 2, 3, 999)).map(([i, index]) => (r: TaskResult) => someChunk(r, i, (c) => (c.chunk_index = index))), weight: 2 },
  { arbitrary: fc.tuple(fc.nat(3), fc.constantFrom(0, 1, 2, 3)).map(([i, count]) => (r: TaskResult) => someChunk(r, i, (c) => (c.count = count))), weight: 2 },
  { arbitrary: fc.tuple(fc.nat(3), fc.constantFrom(NaN, Infinity, -Infinity)).map(([i, v]) => (r: TaskResult) => someChunk(r, i, (c) => (c.adv_loss_sum = v))), weight: 1 },
  { arbitrary: fc.tuple(fc.nat(3), fc.constantFrom(Infinity, -Infinity)).map(([i, v]) => (r: TaskResult) => someChunk(r, i, (c) => (c.clean_loss_sum = v))), weight: 1 },
  { arbitrary: fc.tuple(fc.nat(3), fc.nat(3), tensorMutation).map(([i, g, edit]) => (r: TaskResult) => someChunk(r, i, (c) => c.grads!.length && edit(c.grads![g % c.grads!.length].tensor!))), weight: 4 },
  {
    arbitrary: fc.tuple(fc.nat(3), fc.nat(3), gradValue).map(([i, g, [at, v]]) => (r: TaskResult) =>
      someChunk(r, i, (c) => {
        if (!c.grads!.length) return;
        const t = c.grads![g % c.grads!.length].tensor!;
        const data = Buffer.from(t.data as Uint8Array);
        if (data.length >= 4) data.writeFloatLE(v, 4 * (at % Math.floor(data.length / 4)));
        t.data = data;
      }),
    ),
    weight: 2,
  },
  { arbitrary: fc.tuple(fc.nat(3), fc.nat(3)).map(([i, g]) => (r: TaskResult) => someChunk(r, i, (c) => c.grads!.splice(g % Math.max(1, c.grads!.length), 1))), weight: 1 },
  { arbitrary: fc.tuple(fc.nat(3), fc.constantFrom('evil', 't.A', 'delta')).map(([i, name]) => (r: TaskResult) => someChunk(r, i, (c) => c.grads!.length && c.grads!.push({ ...c.grads![0], name }))), weight: 1 },
);

const RESULT_CHECKS = [
  ['stale: other step or round', /is for step \d+ round \d+, expected/],
  ['bad_chunks: chunk count', /has \d+ chunks, expected \d+/],
  ['bad_chunks: chunk not assigned or twice', /was not assigned or appears twice/],
  ['bad_chunks: sample count', /counts \d+ samples, expected/],
  ['non_finite: loss', /has (clean |adversarial )?loss (NaN|-?Infinity)/],
  ['non_finite: gradient', /has a NaN or infinite value/],
  ['bad_shape: tensor missing', /tensor "[^"]*" is missing/],
  ['bad_shape: unexpected tensor', /unexpected tensor|appears twice/],
  ['bad_shape: dtype', /has dtype .* expected "float32"/],
  ['bad_shape: shape', /has shape \[.*\], expected|has rank \d+, above|invalid dimension/],
  ['bad_shape: bytes', /has \d+ bytes, expected|has no byte data/],
] as const;

test(`structured fuzz: mutated TaskResults reach decodeResult and each of its checks; refusals carry a reason, acceptances fit the round (${RUNS} runs)`, (t) => {
  const tally = new Tally();
  fc.assert(
    fc.property(fc.boolean(), fc.array(resultMutation, { minLength: 1, maxLength: 2 }), (lora, edits) => {
      const task = lora ? loraTask : { ...deltaTask, round: 2 };
      const message = validResult(task);
      message.round = task.round;
      for (const edit of edits) edit(message);
      const wire = work.requestDeserialize(work.requestSerialize({ result: message })).result!;
      tally.add('reached decodeResult');
      try {
        const r = decodeResult(wire, task, shapes);
        tally.add('accepted');
        assert.deepEqual(r.chunks.map((c) => c.index), task.chunks.map((c) => c.index));
        for (const c of r.chunks) for (const data of c.grads.values()) assert.ok(data.every(Number.isFinite), 'accepted gradients are finite');
      } catch (err) {
        if (!(err instanceof InvalidResult)) throw err;
        tally.add(`refused: ${checkOf(err.message, RESULT_CHECKS)}`);
      }
    }),
    { numRuns: RUNS, seed: 22, endOnFailure: true },
  );
  t.diagnostic(`TaskResult cases: ${tally}`);
  assert.equal(tally.get('reached decodeResult'), RUNS);
  assert.equal([...tally.counts.keys()].filter((k) => k.startsWith('refused: other')).length, 0, `every refusal is one of the known checks: ${tally}`);
  for (const [check] of RESULT_CHECKS) assert.ok(tally.get(`refused: ${check}`) >= 5, `check "${check}" reached at least 5 times: ${tally}`);
  assert.ok(tally.get('accepted') >= 5, `some mutations leave a valid result: ${tally}`);
});
