/**
 * The cluster computes exactly what one process computes: in exact mode,
 * 1, 2 or 3 workers end with the adapter of `advclip train`, bit for bit
 * (chunk sums are added in chunk order whoever computed them), for both
 * methods and both perturbation modes; local-delta with one worker equals
 * exact; a worker that joins mid-run gets work and changes nothing.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { runCluster, scratch, startWorker, TINY, trainReference } from './cluster-harness.ts';
import type { Worker } from '../../services/worker/worker.ts';

const tmp = scratch();
after(() => tmp.done());
let n = 0;
const out = () => `${tmp.dir}/run-${++n}`;

const cases = [
  { name: 'advclip-lora universal', args: ['--method', 'advclip-lora', '--perturbation', 'universal'] },
  { name: 'advclip-lora per-sample', args: ['--method', 'advclip-lora', '--perturbation', 'per-sample'] },
  { name: 'clip-lora universal', args: ['--method', 'clip-lora', '--perturbation', 'universal'] },
  { name: 'clip-lora per-sample', args: ['--method', 'clip-lora', '--perturbation', 'per-sample'] },
];

for (const c of cases) {
  describe(`exact mode, ${c.name}`, () => {
    let reference: Buffer;
    before(async () => {
      reference = await trainReference([...TINY, ...c.args], out());
    });
    for (const workers of [1, 2, 3]) {
      test(`${workers} worker(s) end with the adapter of advclip train, bitwise`, async () => {
        const run = await runCluster([...TINY, ...c.args], out(), { workers });
        assert.ok(run.adapter.equals(reference), 'adapter_model.safetensors differs from advclip train');
        assert.equal(run.summary.workers, workers);
        for (const w of run.workers) assert.ok(w.tasksDone > 0, `worker ${w.id} got no work`);
      });
    }
  });
}

describe('other modes', () => {
  test('local-delta with one worker equals exact mode', async () => {
    // local-delta cannot calibrate η_δ from the run's first mean gradient (no process sees it), and defaults to
    // signed steps: the same raw-gradient step with a given η_δ in both modes
    const args = [...TINY, '--method', 'advclip-lora', '--perturbation', 'universal', '--delta-step', 'grad', '--delta-calibration', 'none', '--lr-delta', '0.05'];
    const reference = await trainReference(args, out());
    const run = await runCluster([...args, '--sync', 'local-delta'], out(), { workers: 1 });
    assert.ok(run.adapter.equals(reference));
  });

  test('gauss-seidel updates (two versions per step) with two workers equal advclip train', async () => {
    const args = [...TINY, '--lora-update', 'gauss-seidel'];
    const reference = await trainReference(args, out());
    const run = await runCluster(args, out(), { workers: 2 });
    assert.ok(run.adapter.equals(reference));
  });

  test('a worker joining mid-run gets work from the next round; the result is unchanged', async () => {
    const args = [...TINY, '--iters', '5'];
    const reference = await trainReference(args, out());
    let late: Worker | null = null;
    let joinedAfterStep = -1;
    const run = await runCluster(args, out(), {
      workers: 1,
      onStep: async (_r, state, coordinator) => {
        if (state.step !== 2) return;
        late = await startWorker(coordinator, 'late');
        joinedAfterStep = state.step;
        while (coordinator.registry.live().length < 2) await coordinator.registry.nextEvent();
      },
    });
    try {
      assert.equal(joinedAfterStep, 2);
      assert.ok(late, 'the late worker started');
      const w = late as Worker;
      await w.done;
      // 3 steps after joining × 4 rounds; it shares each chunked round with the first worker
      assert.ok(w.tasksDone >= 6, `the late worker answered ${w.tasksDone} tasks`);
      assert.ok(run.adapter.equals(reference));
    } finally {
      await (late as Worker | null)?.close();
    }
  });
});
