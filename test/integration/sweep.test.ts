/**
 * A sweep's runs share one pool of workers and each ends with the adapter
 * of the same run alone (`advclip train` with its flags), bit for bit; a
 * sweep stopped after one run finished, with another mid-run, and started
 * again skips the finished run, resumes the interrupted one from its
 * checkpoint and ends with the same adapters.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { initBackend } from '../../services/core/backend.ts';
import { DEFAULT_DEADLINE } from '../../services/coordinator/remote-executor.ts';
import { sweepRunsFrom } from '../../services/cli/sweep.ts';
import { SweepMetricNames } from '../../services/protocol/metrics.ts';
import { flagsAsArgv } from '../../services/run/sweep-grid.ts';
import type { SweepPool } from '../../services/run/sweep-pool.ts';
import { runDir, runSweep, type SweepHooks, type SweepRun } from '../../services/run/sweep.ts';
import { workerSetupFrom } from '../../services/run/worker-setup.ts';
import { Worker } from '../../services/worker/worker.ts';
import { adapterBytes, quiet, scratch, trainReference } from './cluster-harness.ts';

const tmp = scratch();
after(() => tmp.done());

// 4 runs: two methods × two lengths, so that one run ends while another is mid-run
const GRID = `
base:
  model: test/fixtures/tiny-clip-f32
  data: data/shapes-colours
  shots: 2
  batch-size: 8
  chunk-size: 2
  seed: 3
grid:
  method: [advclip-lora, clip-lora]
  iters: [2, 5]
`;

let runs: SweepRun[];
const references = new Map<string, Buffer>();

before(async () => {
  const grid = join(tmp.dir, 'grid.yaml');
  writeFileSync(grid, GRID);
  runs = await sweepRunsFrom(grid);
  for (const r of runs) references.set(r.id, await trainReference(flagsAsArgv(r.flags), join(tmp.dir, 'alone', r.id)));
});

/** The sweep with `workers` in-process workers on an insecure loopback pool. */
async function sweep(out: string, workers: number, hooks: Pick<SweepHooks, 'onRunEnd'> = {}) {
  const started: Worker[] = [];
  const backend = await initBackend();
  try {
    const summary = await runSweep(
      { runs, out, grid: 'grid.yaml', concurrency: 2, listen: '127.0.0.1:0', security: { mode: 'insecure' }, metrics: { port: 0 }, deadline: DEFAULT_DEADLINE, heartbeatIntervalMs: 1_000, checkpointEvery: 1 },
      quiet,
      {
        ...hooks,
        workers,
        onListening: async (pool: SweepPool) => {
          for (let i = 0; i < workers; i++) {
            started.push(
              await Worker.start({
                coordinator: pool.address,
                security: { mode: 'insecure' },
                name: `w${i + 1}`,
                capabilities: { backend: backend.name, device: 'cpu', cores: 1, modelSha256: '', version: 'test' },
                prepare: workerSetupFrom({}, backend, quiet),
                metrics: { port: 0 },
                log: quiet,
              }),
            );
          }
          while (pool.registry.live().length < workers) await pool.registry.nextEvent();
        },
      },
    );
    await Promise.all(started.map((w) => w.done));
    return { summary, workers: started };
  } finally {
    await Promise.all(started.map((w) => w.close()));
  }
}

test('a sweep of 4 runs on 2 workers: every adapter equals the run alone, bitwise; both workers got work; each run has its own metric series', async () => {
  const out = join(tmp.dir, 'sweep');
  const stepsByRun = new Map<string, number>();
  const { summary, workers } = await sweep(out, 2, {
    onRunEnd: async (outcome, pool) => {
      const series = await pool.metricsRegistry.getSingleMetric(SweepMetricNames.runStep)!.get();
      stepsByRun.set(outcome.id, series.values.find((v) => v.labels.run === outcome.id)?.value ?? -1);
    },
  });
  assert.equal(summary.done, 4);
  assert.equal(summary.failed, 0);
  for (const r of runs) assert.ok(adapterBytes(runDir(out, r.id)).equals(references.get(r.id)!), `run ${r.id} differs from advclip train`);
  for (const w of workers) assert.ok(w.tasksDone > 0, `worker ${w.id} got no work`);
  // each run's progress is a series of its own: advclip_sweep_run_step{run}
  assert.deepEqual(Object.fromEntries(stepsByRun), Object.fromEntries(runs.map((r) => [r.id, r.run.train.iters])));
  const json = JSON.parse(readFileSync(join(out, 'sweep.json'), 'utf8')) as { runs: { id: string; status: string; adapter_sha256: string }[] };
  assert.deepEqual(json.runs.map((r) => r.id), runs.map((r) => r.id));
  assert.ok(json.runs.every((r) => r.status === 'done' && /^[0-9a-f]{64}$/.test(r.adapter_sha256)));
  const md = readFileSync(join(out, 'sweep.md'), 'utf8');
  assert.match(md, /\| iters \| advclip-lora \| clip-lora \|/);
});

test('a sweep stopped after a run finished, another mid-run, started again: the finished one skipped, the other resumed, the adapters unchanged', async () => {
  const out = join(tmp.dir, 'resumed');
  const first = await sweep(out, 2, {
    onRunEnd: (outcome, pool) => {
      if (outcome.status === 'done') pool.startDraining();
    },
  });
  assert.equal(first.summary.done, 1, 'the first sweep drains after its first finished run');
  const finished = runs.filter((r) => JSON.parse(readFileSync(join(out, 'sweep.json'), 'utf8')).runs.find((x: { id: string }) => x.id === r.id).status === 'done');
  assert.equal(finished.length, 1);
  const second = await sweep(out, 2);
  assert.equal(second.summary.skipped, 1);
  assert.equal(second.summary.done, 4);
  const resumedFrom = runs.map((r) => (JSON.parse(readFileSync(join(runDir(out, r.id), 'train.json'), 'utf8')) as { resumed_from_step?: number }).resumed_from_step ?? 0);
  assert.ok(resumedFrom.some((s) => s > 0), `no run resumed mid-way (resumed from steps ${resumedFrom.join(', ')})`);
  for (const r of runs) assert.ok(adapterBytes(runDir(out, r.id)).equals(references.get(r.id)!), `run ${r.id} differs from advclip train`);
});
