/**
 * Verification by replication (exact mode, --verify-fraction): a real
 * worker that returns one slightly wrong chunk sum per task (its lowest
 * bit flipped, or scaled by 1 + 1e-3) is caught by recomputation, its
 * identity quarantined, and the adapter is bitwise the one `advclip train`
 * writes: at p = 1 every result is checked, so it is caught in its first
 * step with nothing to take back; at p = 0.1 it is caught within a few
 * steps, and the run goes back to the first step its unchecked results
 * reached and takes those steps again without it.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { CoordinatorMetricNames } from '../../services/protocol/metrics.ts';
import { byzantine, lowBitFlipped, scaledBy, type Tamper } from '../helpers/byzantine.ts';
import { runCluster, scratch, TINY, trainReference } from './cluster-harness.ts';

const tmp = scratch();
after(() => tmp.done());
let runs = 0;
const out = () => `${tmp.dir}/run-${++runs}`;

/**
 * A run of 3 workers, the 3rd misbehaving: the step in which its identity
 * was quarantined, the steps reported in order (a step taken again is
 * reported again), the metrics' counts.
 */
async function run(args: readonly string[], tamper: Tamper) {
  let caughtAt: number | null = null;
  let counts: { checks: number; mismatches: number } | null = null;
  const steps: number[] = [];
  const result = await runCluster(args, out(), {
    workers: 3,
    prepare: (i, honest) => (i === 2 ? byzantine(honest, tamper, 'first-chunk') : honest),
    onStep: async (report, _state, coordinator) => {
      // caught in the step after the last one reported before (the run may have gone back since)
      if (caughtAt === null && coordinator.registry.quarantined.size) caughtAt = steps.length ? Math.max(...steps) + 1 : 0;
      steps.push(report.step);
      const value = async (name: string) => (await coordinator.metricsRegistry.getSingleMetric(name)!.get()).values.reduce((n, v) => n + v.value, 0);
      counts = { checks: await value(CoordinatorMetricNames.verifyChecks), mismatches: await value(CoordinatorMetricNames.verifyMismatches) };
    },
  });
  return { adapter: result.adapter, caughtAt, steps, counts: counts!, quarantined: result.workers[2] };
}

test('--verify-fraction 1: a flipped low bit or a sum scaled by 1 + 1e-3 is caught in the first step, and the adapter is bitwise the fault-free one', async () => {
  const reference = await trainReference(TINY, out());
  for (const tamper of [lowBitFlipped, scaledBy(1 + 1e-3)]) {
    const r = await run([...TINY, '--verify-fraction', '1'], tamper);
    assert.equal(r.caughtAt, 0);
    assert.deepEqual(r.steps, [0, 1, 2], 'every result was checked: no step is taken again');
    assert.equal(r.counts.mismatches, 1);
    assert.ok(r.counts.checks > 0);
    assert.ok(r.adapter.equals(reference), 'the adapter differs from advclip train’s');
  }
});

test('--verify-fraction 0.1: a worker wrong in every task is caught within the steps expected, the run takes back the steps it reached, and the adapter is bitwise the fault-free one', async () => {
  const args = [...TINY, '--iters', '20'];
  const reference = await trainReference(args, out());
  // it sends ≥ 1 wrong chunk in each of a step's 4 rounds (τ = 2 δ-rounds, the LoRA and the text round):
  // the chance that 0.1 misses all of them for 20 steps is 0.9^80 ≈ 2e-4; the rollback window
  // (rollbackWindowFor(0.1, 4) = 17 steps) reaches back to its first step unless it escapes 17 steps (0.9^68 ≈ 8e-4)
  const r = await run([...args, '--verify-fraction', '0.1'], lowBitFlipped);
  assert.ok(r.caughtAt !== null && r.caughtAt < 17, `caught in step ${r.caughtAt}`);
  assert.equal(r.counts.mismatches, 1);
  if (r.caughtAt > 0) assert.ok(r.steps.indexOf(0) !== r.steps.lastIndexOf(0), `the run went back to step 0, where the worker's first unchecked results are: steps ${r.steps.join(',')}`);
  assert.deepEqual(r.steps.slice(r.steps.lastIndexOf(0)), [...Array(20).keys()], 'after going back, every step once, in order');
  assert.ok(r.adapter.equals(reference), 'the adapter differs from advclip train’s');
});
