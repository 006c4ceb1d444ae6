/**
 * Replicas of one process share one setup of the run: built once per
 * RunSpec, disposed when the last replica lets go, and their tasks take
 * turns on it (one at a time, in the order they came).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RunSpec__Output } from '../../../services/protocol/generated/advclip/v1/RunSpec.ts';
import type { AdapterTensors, RoundResult, RoundTask } from '../../../services/core/shard.ts';
import { AdvclipError } from '../../../services/core/errors.ts';
import { replicaMetricsPort, replicaName, sharedPreparer, startReplicas } from '../../../services/worker/replicas.ts';
import type { RunPreparer, WorkerSetup } from '../../../services/worker/worker.ts';
import { createLogger } from '../../../services/protocol/log.ts';

/** A preparer that counts its setups and disposals, and whose compute records how many run at once. */
function countingPreparer() {
  const counts = { setups: 0, disposed: 0, running: 0, maxRunning: 0, order: [] as number[] };
  const preparer: RunPreparer = {
    specVersion: 7,
    async setup(): Promise<WorkerSetup> {
      counts.setups++;
      await new Promise((r) => setTimeout(r, 5));
      return {
        shard: {
          compute: async (task: RoundTask) => {
            counts.running++;
            counts.maxRunning = Math.max(counts.maxRunning, counts.running);
            await new Promise((r) => setTimeout(r, 2));
            counts.order.push(task.step);
            counts.running--;
            if (task.step < 0) throw new Error('bad task');
            return { chunks: [] } as unknown as RoundResult;
          },
        },
        initial: { sites: [], a: [], b: [] } as never,
        shapes: {} as never,
        dispose: () => void counts.disposed++,
      };
    },
  };
  return { preparer, counts };
}

const spec = (seed: number) => ({ seed }) as unknown as RunSpec__Output;
const task = (step: number) => ({ kind: 'delta', step, round: 0, chunks: [] }) as unknown as RoundTask;
const noAdapter = {} as AdapterTensors;

test('replicas share one setup per RunSpec, disposed when the last of them lets go', async () => {
  const { preparer, counts } = countingPreparer();
  const shared = sharedPreparer(preparer);
  assert.equal(shared.specVersion, 7);
  const setups = await Promise.all([1, 2, 3].map(() => shared.setup(spec(1))));
  assert.equal(counts.setups, 1);
  setups[0].dispose();
  setups[0].dispose(); // twice from one replica counts once
  setups[1].dispose();
  assert.equal(counts.disposed, 0);
  setups[2].dispose();
  assert.equal(counts.disposed, 1);
  // a later run builds its own setup
  const next = await shared.setup(spec(2));
  assert.equal(counts.setups, 2);
  next.dispose();
  assert.equal(counts.disposed, 2);
});

test('replicas hold several RunSpecs at once (a sweep), each built once and disposed on its own', async () => {
  const { preparer, counts } = countingPreparer();
  const shared = sharedPreparer(preparer);
  const [a1, b1, a2] = await Promise.all([shared.setup(spec(1)), shared.setup(spec(2)), shared.setup(spec(1))]);
  assert.equal(counts.setups, 2);
  b1.dispose();
  assert.equal(counts.disposed, 1);
  a1.dispose();
  assert.equal(counts.disposed, 1);
  a2.dispose();
  assert.equal(counts.disposed, 2);
});

test('the replicas’ tasks take turns on the shared setup, in arrival order, a failure not blocking the next', async () => {
  const { preparer, counts } = countingPreparer();
  const shared = sharedPreparer(preparer);
  const [a, b] = await Promise.all([shared.setup(spec(1)), shared.setup(spec(1))]);
  const results = await Promise.allSettled([a.shard.compute(task(1), noAdapter, 0), b.shard.compute(task(-2), noAdapter, 0), a.shard.compute(task(3), noAdapter, 0), b.shard.compute(task(4), noAdapter, 0)]);
  assert.deepEqual(results.map((r) => r.status), ['fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
  assert.equal(counts.maxRunning, 1);
  assert.deepEqual(counts.order, [1, -2, 3, 4]);
  a.dispose();
  b.dispose();
});

test('replica names and metrics ports: NAME-i and P+i-1; one replica keeps NAME, port 0 stays any free port', () => {
  assert.equal(replicaName('gpu-0', 1, 1), 'gpu-0');
  assert.equal(replicaName('gpu-0', 3, 8), 'gpu-0-3');
  assert.equal(replicaMetricsPort(9464, 1), 9464);
  assert.equal(replicaMetricsPort(9464, 4), 9467);
  assert.equal(replicaMetricsPort(0, 4), 0);
});

test('--replicas outside 1…256 is refused before anything starts', async () => {
  const { preparer, counts } = countingPreparer();
  const o = { coordinator: '127.0.0.1:1', security: { mode: 'insecure' }, name: 'w', capabilities: {}, prepare: preparer, metrics: { port: 0 }, log: createLogger({ json: true, write: () => undefined }) } as never;
  for (const k of [0, -1, 1.5, 257]) await assert.rejects(startReplicas(o, k), (e) => e instanceof AdvclipError && e.code === 'INVALID_ARGUMENT' && /--replicas/.test(e.message));
  assert.equal(counts.setups, 0);
});
