/**
 * A round of the step driver on the wire: core RoundTask ↔ advclip.v1.Task
 * and core RoundResult ↔ advclip.v1.TaskResult. Tensors go through serde.ts
 * with the shapes a run implies (RoundShapes), so a peer's message is
 * checked against what this round can contain before any number is used:
 * every way a result can be wrong is an InvalidResult with a short reason
 * for advclip_rejected_results_total{reason}.
 */
import { AdvclipError, invalidArgument } from '../core/errors.ts';
import type { ClipConfig } from '../core/clip-config.ts';
import type { LoraSite } from '../core/lora.ts';
import { gradKeyA, gradKeyB, type Chunk, type ChunkResult, type RoundKind, type RoundResult, type RoundTask } from '../core/shard.ts';
import { hostTensor, sizeOf, type HostTensor } from '../core/tensor.ts';
import type { NamedTensor__Output } from './generated/advclip/v1/NamedTensor.ts';
import type { RoundKind__Output } from './generated/advclip/v1/RoundKind.ts';
import type { Task, Task__Output } from './generated/advclip/v1/Task.ts';
import type { TaskResult, TaskResult__Output } from './generated/advclip/v1/TaskResult.ts';
import type { Timing__Output } from './generated/advclip/v1/Timing.ts';
import { decodeNamedTensors, decodeTensor, encodeNamedTensor, encodeTensor } from './serde.ts';

const KIND_TO_WIRE = {
  delta: 'DELTA_GRAD',
  lora: 'LORA_GRAD',
  'local-delta': 'LOCAL_DELTA',
  text: 'TEXT_GRAD',
  eval: 'EVAL',
} as const satisfies Record<RoundKind, RoundKind__Output>;

const KIND_FROM_WIRE: Partial<Record<RoundKind__Output, RoundKind>> = Object.fromEntries(
  Object.entries(KIND_TO_WIRE).map(([k, w]) => [w, k as RoundKind]),
);

export const DELTA_KEY = 'delta';
export const TEXT_FEATURES_KEY = 'text_features';

/** The shape of every tensor a round of this run can carry. */
export interface RoundShapes {
  /** the universal δ: [S, S, 3] */
  readonly delta: readonly number[];
  /** G and ∂F/∂T: [classes, projection] */
  readonly textFeatures: readonly number[];
  /** `${site}.A` → [r, in], `${site}.B` → [out, r] of the image tower */
  readonly vision: ReadonlyMap<string, readonly number[]>;
  /** the same for the text tower */
  readonly text: ReadonlyMap<string, readonly number[]>;
}

export function roundShapes(model: ClipConfig, sites: readonly LoraSite[], rank: number, classes: number): RoundShapes {
  const of = (tower: LoraSite['tower']) =>
    new Map(sites.filter((s) => s.tower === tower).flatMap((s) => [[gradKeyA(s.key), [rank, s.inDim]], [gradKeyB(s.key), [s.outDim, rank]]] as const));
  const size = model.vision.imageSize;
  return Object.freeze({ delta: [size, size, 3], textFeatures: [classes, model.projectionDim], vision: of('vision'), text: of('text') });
}

/** What names a round's per-chunk and per-task tensors have, by kind. */
function expectedTensors(kind: RoundKind, shapes: RoundShapes): { chunk: Map<string, readonly number[]>; shard: Map<string, readonly number[]> } {
  switch (kind) {
    case 'delta':
      return { chunk: new Map([[DELTA_KEY, shapes.delta]]), shard: new Map() };
    case 'lora':
      return { chunk: new Map([...shapes.vision, [TEXT_FEATURES_KEY, shapes.textFeatures]]), shard: new Map() };
    case 'local-delta':
      return { chunk: new Map([...shapes.vision, [TEXT_FEATURES_KEY, shapes.textFeatures]]), shard: new Map([[DELTA_KEY, shapes.delta]]) };
    case 'text':
      return { chunk: new Map(shapes.text), shard: new Map() };
    case 'eval':
      return { chunk: new Map(), shard: new Map() };
  }
}

/** What the coordinator attaches to a round when it sends part of it to a worker. */
export interface TaskEnvelope {
  readonly taskId: string;
  readonly adapterVersion: number;
  readonly adapterSha256: string;
  readonly seed: number;
  readonly deadlineMs: number;
}

const shaped = (data: Float32Array, shape: readonly number[], name: string): HostTensor => {
  if (data.length !== sizeOf(shape)) throw invalidArgument(`${name}: ${data.length} values do not fill shape [${shape.join(',')}]`);
  return hostTensor(shape, data);
};

/** A round task (some of its chunks) as a Task message. */
export function encodeTask(task: RoundTask, envelope: TaskEnvelope, shapes: RoundShapes): Task {
  return {
    task_id: envelope.taskId,
    step: task.step,
    round: task.round,
    round_kind: KIND_TO_WIRE[task.kind],
    adapter_version: envelope.adapterVersion,
    adapter_sha256: envelope.adapterSha256,
    ...(task.delta ? { delta: encodeTensor(shaped(task.delta, shapes.delta, 'delta')) } : {}),
    chunks: [...task.chunks].sort((a, b) => a.index - b.index).map((c) => ({ chunk_index: c.index, sample_indices: [...c.samples] })),
    seeds: { seed: envelope.seed },
    deadline_ms: envelope.deadlineMs,
    ...(task.textGrad ? { text_grad: encodeTensor(shaped(task.textGrad, shapes.textFeatures, 'text_grad')) } : {}),
  };
}

/** A Task message as the round task a ShardComputer runs, checked against the run's shapes. */
export function decodeTask(message: Task__Output, shapes: RoundShapes): { task: RoundTask; envelope: TaskEnvelope } {
  const context = `task ${message.task_id || '(no id)'}`;
  const kind = KIND_FROM_WIRE[message.round_kind];
  if (!kind) throw invalidArgument(`${context}: round kind ${message.round_kind} is not one a worker computes`);
  if (!/^[0-9a-f]{64}$/.test(message.adapter_sha256)) throw invalidArgument(`${context}: adapter_sha256 is not a SHA-256 in hex`);
  const delta = message.delta ? decodeTensor(message.delta, { name: `${context} delta`, expectShape: shapes.delta, rejectNonFinite: true }).data : null;
  const textGrad = message.text_grad ? decodeTensor(message.text_grad, { name: `${context} text_grad`, expectShape: shapes.textFeatures, rejectNonFinite: true }).data : null;
  if (kind === 'text' && !textGrad) throw invalidArgument(`${context}: a TEXT_GRAD task needs text_grad`);
  if (message.chunks.length === 0) throw invalidArgument(`${context}: no chunks`);
  const seen = new Set<number>();
  const chunks: Chunk[] = message.chunks.map((c) => {
    if (seen.has(c.chunk_index)) throw invalidArgument(`${context}: chunk ${c.chunk_index} appears twice`);
    seen.add(c.chunk_index);
    if (c.sample_indices.length === 0) throw invalidArgument(`${context}: chunk ${c.chunk_index} has no samples`);
    return { index: c.chunk_index, samples: [...c.sample_indices] };
  });
  return {
    task: { step: message.step, round: message.round, kind, chunks, delta, textGrad },
    envelope: {
      taskId: message.task_id,
      adapterVersion: message.adapter_version,
      adapterSha256: message.adapter_sha256,
      seed: message.seeds?.seed ?? 0,
      deadlineMs: message.deadline_ms,
    },
  };
}

export type WorkerTiming = Omit<Timing__Output, never>;

const named = (grads: ReadonlyMap<string, Float32Array>, shapes: ReadonlyMap<string, readonly number[]>, context: string) =>
  [...grads].map(([name, data]) => {
    const shape = shapes.get(name);
    if (!shape) throw invalidArgument(`${context}: no wire shape for tensor "${name}"`);
    return encodeNamedTensor(name, shaped(data, shape, `${context} ${name}`));
  });

/** A shard computer's result for a task as a TaskResult message. */
export function encodeResult(taskId: string, task: RoundTask, result: RoundResult, timing: WorkerTiming, shapes: RoundShapes): TaskResult {
  const expected = expectedTensors(task.kind, shapes);
  const shard = task.kind === 'local-delta' && result.localDelta ? new Map([[DELTA_KEY, result.localDelta.delta]]) : new Map<string, Float32Array>();
  return {
    task_id: taskId,
    step: task.step,
    round: task.round,
    chunks: result.chunks.map((c) => ({
      chunk_index: c.index,
      count: c.count,
      clean_loss_sum: c.cleanLossSum,
      adv_loss_sum: c.advLossSum,
      grads: named(c.grads, expected.chunk, `chunk ${c.index}`),
      ...(c.correct !== undefined ? { correct: c.correct } : {}),
    })),
    timing,
    shard_tensors: named(shard, expected.shard, 'shard'),
  };
}

export const RejectReasons = ['stale', 'wrong_worker', 'bad_chunks', 'bad_shape', 'non_finite', 'malformed'] as const;
export type RejectReason = (typeof RejectReasons)[number];

/** A worker result the coordinator refuses; `reason` labels the metric. */
export class InvalidResult extends AdvclipError {
  constructor(
    readonly reason: RejectReason,
    message: string,
  ) {
    super(reason === 'stale' ? 'FAILED_PRECONDITION' : 'INVALID_ARGUMENT', message);
  }
}

const finite = (data: Float32Array) => data.every(Number.isFinite);

function decodeChecked(list: readonly NamedTensor__Output[], expectShapes: ReadonlyMap<string, readonly number[]>, context: string): Map<string, Float32Array> {
  let decoded: Map<string, HostTensor>;
  try {
    decoded = decodeNamedTensors(list, { context, expectShapes });
  } catch (err) {
    throw new InvalidResult('bad_shape', (err as Error).message);
  }
  const out = new Map<string, Float32Array>();
  for (const [name, t] of decoded) {
    if (!finite(t.data)) throw new InvalidResult('non_finite', `${context}: tensor "${name}" has a NaN or infinite value`);
    out.set(name, t.data);
  }
  return out;
}

/**
 * A TaskResult as the RoundResult of the task it answers (`task`: what was
 * sent). Chunks come back in chunk order; anything that does not match the
 * task is an InvalidResult.
 */
export function decodeResult(message: TaskResult__Output, task: RoundTask, shapes: RoundShapes): RoundResult & { timing: WorkerTiming } {
  const context = `result ${message.task_id}`;
  if (message.step !== task.step || message.round !== task.round) {
    throw new InvalidResult('stale', `${context}: is for step ${message.step} round ${message.round}, expected step ${task.step} round ${task.round}`);
  }
  const expected = expectedTensors(task.kind, shapes);
  const assigned = new Map(task.chunks.map((c) => [c.index, c]));
  if (message.chunks.length !== assigned.size) throw new InvalidResult('bad_chunks', `${context}: has ${message.chunks.length} chunks, expected ${assigned.size}`);
  const seen = new Set<number>();
  const chunks: ChunkResult[] = message.chunks.map((c) => {
    const chunk = assigned.get(c.chunk_index);
    if (!chunk || seen.has(c.chunk_index)) throw new InvalidResult('bad_chunks', `${context}: chunk ${c.chunk_index} was not assigned or appears twice`);
    seen.add(c.chunk_index);
    if (c.count !== chunk.samples.length) throw new InvalidResult('bad_chunks', `${context}: chunk ${c.chunk_index} counts ${c.count} samples, expected ${chunk.samples.length}`);
    if (!Number.isFinite(c.adv_loss_sum)) throw new InvalidResult('non_finite', `${context}: chunk ${c.chunk_index} has adversarial loss ${c.adv_loss_sum}`);
    // NaN is how the core says "clean loss not computed"; an infinity is a bad result
    if (c.clean_loss_sum === Infinity || c.clean_loss_sum === -Infinity) throw new InvalidResult('non_finite', `${context}: chunk ${c.chunk_index} has clean loss ${c.clean_loss_sum}`);
    const grads = decodeChecked(c.grads, expected.chunk, `${context} chunk ${c.chunk_index}`);
    if (task.kind !== 'eval') return { index: c.chunk_index, count: c.count, advLossSum: c.adv_loss_sum, cleanLossSum: c.clean_loss_sum, grads };
    if (c.correct > c.count) throw new InvalidResult('bad_chunks', `${context}: chunk ${c.chunk_index} counts ${c.correct} correct of ${c.count} samples`);
    return { index: c.chunk_index, count: c.count, advLossSum: c.adv_loss_sum, cleanLossSum: c.clean_loss_sum, grads, correct: c.correct };
  });
  chunks.sort((a, b) => a.index - b.index);
  const shard = decodeChecked(message.shard_tensors, expected.shard, `${context} shard`);
  const count = chunks.reduce((n, c) => n + c.count, 0);
  const localDelta = task.kind === 'local-delta' ? { count, delta: shard.get(DELTA_KEY)! } : null;
  const timing = message.timing ?? { compute_ms: 0, fetch_ms: 0, decode_ms: 0, encode_ms: 0, total_ms: 0 };
  return { chunks, localDelta, timing };
}

/** Room for a tensor's name, shape and framing in a message, beyond its float32 bytes. */
const TENSOR_FRAMING_BYTES = 256;

/**
 * The largest message of a run, either way: a result of every chunk of
 * its largest round from one worker (a replicated text round, a worker
 * left alone), a task, or an adapter version (GetAdapter) — with a quarter
 * and 1 MiB to spare. The coordinator's gRPC limits are this, so a worker
 * cannot make it buffer more than a run can need.
 */
export function maxMessageBytes(shapes: RoundShapes, chunks: { readonly image: number; readonly text: number; readonly samples: number }): number {
  const tensorBytes = (shape: readonly number[]) => 4 * sizeOf(shape) + TENSOR_FRAMING_BYTES;
  const sum = (m: ReadonlyMap<string, readonly number[]>) => [...m.values()].reduce((n, s) => n + tensorBytes(s), 0);
  const perImageChunk = Math.max(tensorBytes(shapes.delta), sum(shapes.vision) + tensorBytes(shapes.textFeatures));
  const result = Math.max(chunks.image * perImageChunk + tensorBytes(shapes.delta), chunks.text * sum(shapes.text));
  const task = tensorBytes(shapes.delta) + tensorBytes(shapes.textFeatures) + 10 * chunks.samples + TENSOR_FRAMING_BYTES * (chunks.image + chunks.text);
  const adapter = sum(shapes.vision) + sum(shapes.text) + 64 * 1024;
  return Math.ceil(1.25 * Math.max(result, task, adapter)) + 1024 * 1024;
}
