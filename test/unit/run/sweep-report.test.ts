/**
 * sweep.md reads like the paper's tables: a row per data set × shots, a
 * column per method, each cell mean ± sample std over the seeds of the runs
 * that finished; sweep.json lists every run with its flags and figures.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { meanStd, sweepJson, sweepTables, type RunOutcome } from '../../../services/run/sweep-report.ts';

test('mean and sample standard deviation (n − 1), 0 for one value', () => {
  assert.deepEqual(meanStd([1, 2, 3]), { mean: 2, std: 1, n: 3 });
  assert.deepEqual(meanStd([5]), { mean: 5, std: 0, n: 1 });
  assert.ok(Number.isNaN(meanStd([]).mean));
});

const run = (data: string, shots: number, seed: number, method: string, accuracy: number | null, loss: number, status: RunOutcome['status'] = 'done'): RunOutcome => ({
  id: `${data}_shots${shots}_seed${seed}_${method}`,
  status,
  flags: { data: `data/${data}`, shots, seed, method },
  varied: { data: `data/${data}`, shots, seed, method },
  out: 'x',
  finalLoss: loss,
  ...(accuracy === null ? {} : { evaluation: { attack: 'pgd', epsilon: 1 / 255, n: 50, accuracy } }),
});

test('sweep.md: one row per data set × shots, one column per method, mean ± std over seeds; unfinished runs left out and named', () => {
  const runs = [
    run('colours', 1, 1, 'advclip-lora', 0.5, 1.0),
    run('colours', 1, 2, 'advclip-lora', 0.6, 2.0),
    run('colours', 1, 3, 'advclip-lora', 0.7, 3.0),
    run('colours', 1, 1, 'clip-lora', 0.2, 0.5),
    run('colours', 1, 2, 'clip-lora', 0.4, 0.5),
    run('colours', 1, 3, 'clip-lora', 0.9, 0.5, 'failed'),
    run('shapes', 2, 1, 'advclip-lora', 0.8, 1.5),
  ];
  const md = sweepTables(runs);
  assert.match(md, /6 of 7 runs finished; each cell is the mean ± standard deviation over 3 seeds/);
  assert.match(md, /### Accuracy \(%\) under pgd, ε = 1\/255/);
  assert.match(md, /\| data \| shots \| advclip-lora \| clip-lora \|/);
  assert.match(md, /\| colours \| 1 \| 60\.00 ± 10\.00 \| 30\.00 ± 14\.14 \|/);
  assert.match(md, /\| shapes \| 2 \| 80\.00 \| — \|/);
  assert.match(md, /### Final training loss[\s\S]*\| colours \| 1 \| 2\.0000 ± 1\.0000 \| 0\.5000 ± 0\.0000 \|/);
  assert.match(md, /Not finished: colours_shots1_seed3_clip-lora \(failed\)/);
});

test('sweep.json lists every run in order with its flags, adapter hash and figures', () => {
  const json = sweepJson([{ ...run('colours', 1, 1, 'clip-lora', 0.25, 1), adapterSha256: 'ab'.repeat(32), skipped: true }], { grid: 'g.yaml' }) as { grid: string; runs: Record<string, unknown>[] };
  assert.equal(json.grid, 'g.yaml');
  assert.deepEqual(json.runs[0], {
    id: 'colours_shots1_seed1_clip-lora',
    status: 'done',
    skipped: true,
    flags: { data: 'data/colours', shots: 1, seed: 1, method: 'clip-lora' },
    varied: { data: 'data/colours', shots: 1, seed: 1, method: 'clip-lora' },
    out: 'x',
    adapter_sha256: 'ab'.repeat(32),
    final_loss: 1,
    evaluation: { attack: 'pgd', epsilon: 1 / 255, n: 50, accuracy: 0.25 },
    seconds: null,
  });
});
