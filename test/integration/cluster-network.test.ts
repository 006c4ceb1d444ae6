/**
 * What a step puts on the wire, as the coordinator counts it: the bytes of
 * each step's Task messages are exactly the protobuf encodings of the tasks
 * it sent, re-encoded here; the bytes of its results are exactly those of
 * results of the same structure (chunks, tensor names and shapes, task ids),
 * built here with zeros — a result's size does not depend on its numbers.
 * advclip_network_bytes_total adds up to the same, and the time outside
 * the workers' compute fits in the rounds' time.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import type { Coordinator, StepCosts } from '../../services/coordinator/coordinator.ts';
import { parseFlags } from '../../services/cli/args.ts';
import { coordinatorCommand } from '../../services/cli/coordinator.ts';
import { planRun } from '../../services/run/prepare.ts';
import { runSpecFrom } from '../../services/cli/train-flags.ts';
import type { RoundResult, RoundTask } from '../../services/core/shard.ts';
import { sizeOf } from '../../services/core/tensor.ts';
import type { Task } from '../../services/protocol/generated/advclip/v1/Task.ts';
import { CoordinatorMetricNames } from '../../services/protocol/metrics.ts';
import { coordinatorService } from '../../services/protocol/proto-loader.ts';
import { DELTA_KEY, TEXT_FEATURES_KEY, decodeTask, encodeResult, roundShapes, type RoundShapes } from '../../services/protocol/task-codec.ts';
import { quiet, runCluster, scratch, TINY } from './cluster-harness.ts';

const tmp = scratch();
after(() => tmp.done());
const work = coordinatorService().Work;

async function shapesOf(args: readonly string[]): Promise<RoundShapes> {
  const plan = await planRun(runSpecFrom(parseFlags(coordinatorCommand, [...args, '--out', tmp.dir])), quiet);
  return roundShapes(plan.dir.config, plan.initial.sites, plan.spec.lora.rank, plan.dataset.classNames.length);
}

const zeros = (shapes: Iterable<readonly [string, readonly number[]]>) => new Map([...shapes].map(([name, shape]) => [name, new Float32Array(sizeOf(shape))]));

/** A result of `task` as a worker shapes it, every number zero. */
function resultLike(task: RoundTask, shapes: RoundShapes): RoundResult {
  const perChunk: [string, readonly number[]][] =
    task.kind === 'delta' ? [[DELTA_KEY, shapes.delta]] : task.kind === 'lora' ? [...shapes.vision, [TEXT_FEATURES_KEY, shapes.textFeatures]] : [...shapes.text];
  return {
    chunks: task.chunks.map((c) => ({ index: c.index, count: c.samples.length, advLossSum: 0, cleanLossSum: NaN, grads: zeros(perChunk) })),
    localDelta: null,
  };
}

const TIMING = { compute_ms: 0, fetch_ms: 0, decode_ms: 0, encode_ms: 0, total_ms: 0 };

test('a step counts the protobuf bytes of its tasks and results, exactly; the metric adds up to them', async () => {
  const shapes = await shapesOf(TINY);
  const sent: Task[] = [];
  const steps: { costs: StepCosts; tasks: Task[] }[] = [];
  let coordinator: Coordinator | undefined;
  await runCluster(TINY, `${tmp.dir}/run`, {
    workers: 2,
    onListening: (c) => {
      coordinator = c;
      c.registry.onEvent((e) => {
        if (e.kind !== 'joined') return;
        const send = e.session.send;
        e.session.send = (m) => {
          if (m.task) sent.push(m.task);
          send(m);
        };
      });
    },
    onStep: (_report, _state, c) => void steps.push({ costs: c.lastStepCosts!, tasks: sent.splice(0) }),
  });

  assert.equal(steps.length, 3);
  for (const [i, { costs, tasks }] of steps.entries()) {
    assert.ok(tasks.length >= 4 && tasks.every((t) => t.step === i), `step ${i}: tasks of steps ${tasks.map((t) => t.step).join(',')}`);
    const encoded = tasks.map((t) => work.responseSerialize({ task: t }));
    const results = encoded.map((bytes) => {
      const { task, envelope } = decodeTask(work.responseDeserialize(bytes).task!, shapes);
      return work.requestSerialize({ result: encodeResult(envelope.taskId, task, resultLike(task, shapes), TIMING, shapes) });
    });
    const total = (buffers: Buffer[]) => buffers.reduce((n, b) => n + b.byteLength, 0);
    assert.equal(costs.sentBytes, total(encoded), `step ${i}: bytes of the tasks sent`);
    assert.equal(costs.receivedBytes, total(results), `step ${i}: bytes of the results received`);
    assert.ok(costs.networkMs >= 0 && costs.computeMs > 0 && costs.networkMs + costs.computeMs + costs.waitMs <= costs.roundsMs + 1e-6, JSON.stringify(costs));
    assert.ok(costs.adapterBytes > 0);
  }

  const counted = await coordinator!.metricsRegistry.getSingleMetric(CoordinatorMetricNames.networkBytes)!.get();
  const bytes = (direction: string, message: string) => counted.values.find((v) => v.labels.direction === direction && v.labels.message === message)?.value ?? 0;
  const sum = (of: (c: StepCosts) => number) => steps.reduce((n, s) => n + of(s.costs), 0);
  assert.equal(bytes('sent', 'task'), sum((c) => c.sentBytes));
  assert.equal(bytes('received', 'result') + bytes('received', 'error'), sum((c) => c.receivedBytes));
  assert.ok(bytes('received', 'hello') > 0 && bytes('received', 'register') > 0 && bytes('sent', 'register') > 0, JSON.stringify(counted.values));
});
