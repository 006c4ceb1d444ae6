/**
 * Verification by replication (exact mode, --verify-fraction): a real
 * worker that returns one slightly wrong chunk sum per task (its lowest
 * bit flipped, or scaled by 1 + 1e-3) is caught by recomputation, its
 * identity quarantined, and at p = 1 the adapter is bitwise the one
 * `advclip train` writes. At p = 0.1 it is caught within a few steps.
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

/** A run of 3 workers, the 3rd misbehaving; the step after which its identity was quarantined, the metrics' counts. */
async function run(args: readonly string[], tamper: Tamper) {
  let caughtAt: number | null = null;
  let counts: { checks: number; mismatches: number } | null = null;
  const result = await runCluster(args, out(), {
    workers: 3,
    prepare: (i, honest) => (i === 2 ? byzantine(honest, tamper, 'first-chunk') : honest),
    onStep: async (report, _state, coordinator) => {
      if (caughtAt === null && coordinator.registry.quarantined.size) caughtAt = report.step;
      const value = async (name: string) => (await coordinator.metricsRegistry.getSingleMetric(name)!.get()).values.reduce((n, v) => n + v.value, 0);
      counts = { checks: await value(CoordinatorMetricNames.verifyChecks), mismatches: await value(CoordinatorMetricNames.verifyMismatches) };
    },
  });
  return { adapter: result.adapter, caughtAt, counts: counts!, quarantined: result.workers[2] };
}

test('--verify-fraction 1: a flipped low bit or a sum scaled by 1 + 1e-3 is caught in the first step, and the adapter is bitwise the fault-free one', async () => {
  const reference = await trainReference(TINY, out());
  for (const tamper of [lowBitFlipped, scaledBy(1 + 1e-3)]) {
    const r = await run([...TINY, '--verify-fraction', '1'], tamper);
    assert.equal(r.caughtAt, 0);
    assert.equal(r.counts.mismatches, 1);
    assert.ok(r.counts.checks > 0);
    assert.ok(r.adapter.equals(reference), 'the adapter differs from advclip train’s');
  }
});

test('--verify-fraction 0.1: a worker wrong in every task is caught within the steps expected', async () => {
  // it sends ≥ 1 wrong chunk in each of a step's 4 rounds (τ = 2 δ-rounds, the LoRA and the text round):
  // the chance that 0.1 misses all of them for 20 steps is 0.9^80 ≈ 2e-4
  const r = await run([...TINY, '--iters', '20', '--verify-fraction', '0.1'], lowBitFlipped);
  assert.ok(r.caughtAt !== null && r.caughtAt < 20, `caught at step ${r.caughtAt}`);
  assert.equal(r.counts.mismatches, 1);
});
