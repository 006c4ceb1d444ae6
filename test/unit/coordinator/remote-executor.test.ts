/**
 * The remote executor against fake workers: a result sent for another
 * worker's task is refused (`wrong_worker`) and counted against the sender,
 * the owner's answer still counts; a result for no pending task is `stale`
 * and not counted. A step's bytes are those of its tasks, results and task
 * errors.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AdapterVersions } from '../../../services/coordinator/adapter-versions.ts';
import { RemoteExecutor, verifiedChunk, type RemoteExecutorOptions } from '../../../services/coordinator/remote-executor.ts';
import { RollBack } from '../../../services/core/trainer.ts';
import { WorkerRegistry } from '../../../services/coordinator/worker-registry.ts';
import { defaultLoraConfig, initLora } from '../../../services/core/lora.ts';
import type { RoundTask } from '../../../services/core/shard.ts';
import { readClipConfig } from '../../../services/io/hf-config.ts';
import type { CoordinatorMessage } from '../../../services/protocol/generated/advclip/v1/CoordinatorMessage.ts';
import type { Task } from '../../../services/protocol/generated/advclip/v1/Task.ts';
import type { WorkerCapabilities__Output } from '../../../services/protocol/generated/advclip/v1/WorkerCapabilities.ts';
import { coordinatorService } from '../../../services/protocol/proto-loader.ts';
import { encodeResult, type RoundShapes } from '../../../services/protocol/task-codec.ts';

const model = await readClipConfig(new URL('../../fixtures/tiny-clip-f32/config.json', import.meta.url).pathname);
const lora = initLora(model, defaultLoraConfig, 1);
const shapes: RoundShapes = { delta: [2, 2, 3], textFeatures: [3, 4], vision: new Map(), text: new Map() };
const work = coordinatorService().Work;
const executorFor = (registry: WorkerRegistry, options: Partial<RemoteExecutorOptions> = {}) =>
  new RemoteExecutor({
    registry,
    versions: new AdapterVersions({ publisher: null, warn: () => undefined }),
    shapes,
    seed: 1,
    minWorkers: 1,
    events: { accepted: () => undefined, rejected: () => undefined, waiting: () => undefined, verified: () => undefined, caught: () => undefined, duplicated: () => undefined },
    warn: () => undefined,
    ...options,
  });
const wire = (r: ReturnType<typeof encodeResult>) => work.requestDeserialize(work.requestSerialize({ result: r })).result!;

test('a result for another worker’s task is refused as wrong_worker and counted against the sender; a result for no task is stale, not counted', async () => {
  const registry = new WorkerRegistry();
  const sent = new Map<string, Task[]>();
  const join = (name: string) => {
    const id = registry.admit({ worker_name: name } as WorkerCapabilities__Output);
    sent.set(id, []);
    registry.join(id, 0, (m: CoordinatorMessage) => m.task && sent.get(id)!.push(m.task), () => undefined);
    return id;
  };
  const [a, b] = [join('a'), join('b')];
  const rejected: [string, string, number][] = [];
  const executor = executorFor(registry, {
    minWorkers: 2,
    events: { accepted: () => undefined, rejected: (w, reason, n) => rejected.push([w, reason, n]), waiting: () => undefined, verified: () => undefined, caught: () => undefined, duplicated: () => undefined },
  });
  const task: RoundTask = { step: 0, round: 0, kind: 'delta', chunks: [0, 1].map((index) => ({ index, samples: [2 * index, 2 * index + 1] })), delta: new Float32Array(12), textGrad: null };
  const round = executor.execute(task, lora, 0);
  while (sent.get(a)!.length === 0 || sent.get(b)!.length === 0) await new Promise((r) => setTimeout(r, 5));
  const answer = (t: Task, grad: number) =>
    wire(encodeResult(t.task_id!, { ...task, chunks: t.chunks!.map((c) => ({ index: c.chunk_index!, samples: c.sample_indices! })) }, {
      chunks: t.chunks!.map((c) => ({ index: c.chunk_index!, count: c.sample_indices!.length, advLossSum: 1, cleanLossSum: NaN, grads: new Map([['delta', new Float32Array(12).fill(grad)]]) })),
      localDelta: null,
    }, { compute_ms: 1, fetch_ms: 0, decode_ms: 0, encode_ms: 0, total_ms: 1 }, shapes));
  const [ta, tb] = [sent.get(a)![0], sent.get(b)![0]];
  executor.onResult(b, answer(ta, 666)); // b answers a's task
  executor.onResult(b, { ...answer(tb, 1), task_id: 'no-such-task' });
  executor.onResult(a, answer(ta, 1));
  executor.onResult(b, answer(tb, 2));
  const done = await round;
  assert.deepEqual(rejected, [[b, 'wrong_worker', 1], [b, 'stale', 0]]);
  assert.equal(registry.badResults(b), 1);
  assert.deepEqual(done.chunks.map((c) => [c.index, c.grads.get('delta')![0]]), [[0, 1], [1, 2]], 'each chunk from its owner');
  executor.close();
});

test('a step’s bytes are its tasks out and its results and task errors back; heartbeats and adapters are not; takeCosts starts a fresh count', () => {
  const executor = executorFor(new WorkerRegistry());
  for (const [direction, message, bytes] of [
    ['sent', 'task', 1000],
    ['sent', 'adapter_version', 50],
    ['sent', 'get_adapter', 9000],
    ['received', 'heartbeat', 20],
    ['received', 'result', 3000],
    ['received', 'error', 70],
    ['sent', 'task', 1000],
  ] as const) {
    executor.countWire({ direction, message, bytes });
  }
  const costs = executor.takeCosts();
  assert.deepEqual([costs.sentBytes, costs.receivedBytes], [2000, 3070]);
  assert.deepEqual([executor.takeCosts().sentBytes, executor.takeCosts().receivedBytes], [0, 0]);
  executor.close();
});

test('a text round is cut into class groups spread over the workers, and comes back in group order', async () => {
  const textShapes: RoundShapes = { ...shapes, textFeatures: [10, 4], text: new Map([['t.A', [2]]]) };
  const registry = new WorkerRegistry();
  const sent = new Map<string, Task[]>();
  for (const name of ['a', 'b']) {
    const id = registry.admit({ worker_name: name } as WorkerCapabilities__Output);
    sent.set(id, []);
    registry.join(id, 0, (m: CoordinatorMessage) => m.task && sent.get(id)!.push(m.task), () => undefined);
  }
  const executor = executorFor(registry, { shapes: textShapes, minWorkers: 2 });
  const task: RoundTask = { step: 0, round: 2, kind: 'text', chunks: [], delta: null, textGrad: new Float32Array(40) };
  const round = executor.execute(task, lora, 0);
  while ([...sent.values()].some((tasks) => tasks.length === 0)) await new Promise((r) => setTimeout(r, 5));
  const groups = [...sent.values()].flatMap((tasks) => tasks.flatMap((t) => t.chunks!.map((c) => [c.chunk_index!, [...c.sample_indices!]] as const)));
  assert.deepEqual(new Map(groups), new Map([[0, [0, 1, 2, 3]], [1, [4, 5, 6, 7]], [2, [8, 9]]]), 'the 10 classes in groups of 4, each group once');
  for (const [id, tasks] of sent) {
    for (const t of tasks) {
      const mine = t.chunks!.map((c) => ({ index: c.chunk_index!, samples: c.sample_indices! }));
      const result = { chunks: mine.map((c) => ({ index: c.index, count: c.samples.length, advLossSum: 0, cleanLossSum: NaN, grads: new Map([['t.A', Float32Array.of(c.index, 1)]]) })), localDelta: null };
      executor.onResult(id, wire(encodeResult(t.task_id!, { ...task, chunks: mine }, result, { compute_ms: 1, fetch_ms: 0, decode_ms: 0, encode_ms: 0, total_ms: 1 }, textShapes)));
    }
  }
  const done = await round;
  assert.deepEqual(done.chunks.map((c) => [c.index, c.count, c.grads.get('t.A')![0]]), [[0, 4, 0], [1, 4, 1], [2, 2, 2]]);
  executor.close();
});

test('a part still out well past the round’s pace goes to an idle worker too: the first good result counts, the late one is a free check', async () => {
  const registry = new WorkerRegistry();
  const sent = new Map<string, Task[]>();
  const join = (name: string) => {
    const id = registry.admit({ worker_name: name, backend: 'cpu' } as WorkerCapabilities__Output);
    sent.set(id, []);
    registry.join(id, 0, (m: CoordinatorMessage) => m.task && sent.get(id)!.push(m.task), () => undefined);
    return id;
  };
  const [a, b] = [join('a'), join('b')];
  const duplicated: [string, string, number][] = [];
  let verified = 0;
  const executor = executorFor(registry, {
    minWorkers: 2,
    events: { accepted: () => undefined, rejected: () => undefined, waiting: () => undefined, verified: (n) => (verified += n), caught: () => undefined, duplicated: (...d) => duplicated.push(d) },
  });
  const task: RoundTask = { step: 0, round: 0, kind: 'delta', chunks: [0, 1].map((index) => ({ index, samples: [2 * index, 2 * index + 1] })), delta: new Float32Array(12), textGrad: null };
  const answer = (t: Task) =>
    wire(encodeResult(t.task_id!, { ...task, chunks: t.chunks!.map((c) => ({ index: c.chunk_index!, samples: c.sample_indices! })) }, {
      chunks: t.chunks!.map((c) => ({ index: c.chunk_index!, count: c.sample_indices!.length, advLossSum: 1, cleanLossSum: NaN, grads: new Map([['delta', new Float32Array(12).fill(c.chunk_index!)]]) })),
      localDelta: null,
    }, { compute_ms: 1, fetch_ms: 0, decode_ms: 0, encode_ms: 0, total_ms: 1 }, shapes));
  const round = executor.execute(task, lora, 0);
  const until = async (ok: () => boolean) => {
    while (!ok()) await new Promise((r) => setTimeout(r, 5));
  };
  await until(() => sent.get(a)!.length === 1 && sent.get(b)!.length === 1);
  executor.onResult(a, answer(sent.get(a)![0])); // b stays silent: a is idle
  await until(() => sent.get(a)!.length === 2);
  assert.deepEqual(duplicated, [[b, a, 1]]);
  assert.deepEqual(sent.get(a)![1].chunks!.map((c) => c.chunk_index), sent.get(b)![0].chunks!.map((c) => c.chunk_index), 'the same chunks');
  executor.onResult(a, answer(sent.get(a)![1]));
  const done = await round;
  assert.deepEqual(done.chunks.map((c) => [c.index, c.grads.get('delta')![0]]), [[0, 0], [1, 1]]);
  assert.deepEqual(done.shares.map((s) => s.worker), [a, a], 'both parts from a');
  executor.onResult(b, answer(sent.get(b)![0])); // late, and the same bits
  await until(() => verified > 0);
  assert.equal(verified, 1);
  executor.close();
});

test('a worker caught by a check, whose unchecked results reached an earlier step: RollBack to that step (without a window: its results of the round are recomputed, no more)', async () => {
  const fraction = 0.5;
  const chunks = [0, 1, 2, 3, 4, 5].map((index) => ({ index, samples: [2 * index, 2 * index + 1] }));
  const taskAt = (step: number): RoundTask => ({ step, round: 0, kind: 'delta', chunks, delta: new Float32Array(12), textGrad: null });
  const picks = (step: number) => chunks.filter((c) => verifiedChunk(1, taskAt(step), c.index, fraction)).length;
  // a step none of whose chunks is checked, then one all of whose are (seeded: found, not hoped for)
  const unchecked = [...Array(10_000).keys()].find((s) => picks(s) === 0)!;
  const checked = [...Array(10_000).keys()].find((s) => s > unchecked && picks(s) === chunks.length)!;
  for (const rollbackWindow of [8, 0]) {
    const registry = new WorkerRegistry();
    const executor = executorFor(registry, { verifyFraction: fraction, rollbackWindow });
    /** a worker that answers at once; c adds 0.5 to every gradient it sends */
    const join = (name: string) => {
      const id = registry.admit({ worker_name: name, backend: 'cpu' } as WorkerCapabilities__Output);
      registry.join(id, 0, (m: CoordinatorMessage) => {
        const t = m.task;
        if (!t) return;
        const mine = t.chunks!.map((c) => ({ index: c.chunk_index!, samples: c.sample_indices! }));
        const result = { chunks: mine.map((c) => ({ index: c.index, count: c.samples.length, advLossSum: 1, cleanLossSum: NaN, grads: new Map([['delta', new Float32Array(12).fill(c.index + (name === 'c' ? 0.5 : 0))]]) })), localDelta: null };
        setImmediate(() => executor.onResult(id, wire(encodeResult(t.task_id!, { ...taskAt(Number(t.step)), chunks: mine }, result, { compute_ms: 1, fetch_ms: 0, decode_ms: 0, encode_ms: 0, total_ms: 1 }, shapes))));
      }, () => undefined);
      return id;
    };
    // c alone computes the unchecked step; a and b join (at c's rate, unmeasured), and all three share the checked one
    const c = join('c');
    const first = await executor.execute(taskAt(unchecked), lora, 0);
    assert.deepEqual(first.shares.map((s) => s.worker), [c], 'c’s wrong results went into the unchecked step');
    join('a');
    join('b');
    const second = executor.execute(taskAt(checked), lora, 1);
    if (rollbackWindow > 0) {
      await assert.rejects(second, (err: unknown) => err instanceof RollBack && err.toStep === unchecked);
    } else {
      const done = await second;
      assert.deepEqual(done.chunks.map((x) => x.grads.get('delta')![0]), [0, 1, 2, 3, 4, 5], 'the round itself is right');
    }
    assert.deepEqual([...registry.quarantined.keys()], ['c']);
    executor.close();
  }
});
