/**
 * `advclip sweep --workers 2` as a user runs it: worker processes joining
 * one pool over throwaway mTLS, three runs of a grid, each ending with the
 * adapter of `advclip train` with its flags; the results in sweep.json and
 * sweep.md; started again, every run is skipped.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { runCli } from '../helpers/cli.ts';

const tmp = mkdtempSync(join(tmpdir(), 'advclip-sweep-cli-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
const adapter = (dir: string) => readFileSync(join(dir, 'adapter_model.safetensors'));

const GRID = `
base:
  model: test/fixtures/tiny-clip-f32
  data: data/shapes-colours
  shots: 2
  iters: 2
  batch-size: 8
  chunk-size: 2
grid:
  seed: [1, 2, 3]
`;

test('advclip sweep --workers 2 (mTLS): 3 runs, each the adapter of advclip train; sweep.json, sweep.md; a second invocation skips them all', async () => {
  const grid = join(tmp, 'grid.yaml');
  writeFileSync(grid, GRID);
  const out = join(tmp, 'results');
  const sweep = await runCli(['sweep', '--grid', grid, '--workers', '2', '--out', out, '--metrics-port', '0', '--json'], { timeoutMs: 300_000 });
  assert.equal(sweep.code, 0, sweep.stderr);
  const summary = JSON.parse(sweep.stdout);
  assert.equal(summary.runs, 3);
  assert.equal(summary.done, 3);
  assert.equal(summary.workers, 2);
  assert.match(sweep.stderr, /"tls":"mtls"/);
  assert.match(sweep.stderr, /sweep: 3\/3 runs done/);
  for (const seed of [1, 2, 3]) {
    const alone = join(tmp, `train-${seed}`);
    const train = await runCli(['train', '--model', 'test/fixtures/tiny-clip-f32', '--data', 'data/shapes-colours', '--shots', '2', '--iters', '2', '--batch-size', '8', '--chunk-size', '2', '--seed', String(seed), '--out', alone]);
    assert.equal(train.code, 0, train.stderr);
    assert.ok(adapter(join(out, 'runs', `seed${seed}`)).equals(adapter(alone)), `run seed${seed} differs from advclip train`);
  }
  const json = JSON.parse(readFileSync(join(out, 'sweep.json'), 'utf8'));
  assert.deepEqual(json.runs.map((r: { id: string; status: string }) => `${r.id} ${r.status}`), ['seed1 done', 'seed2 done', 'seed3 done']);
  assert.match(readFileSync(join(out, 'sweep.md'), 'utf8'), /3 of 3 runs finished; each cell is the mean ± standard deviation over 3 seeds/);
  const again = await runCli(['sweep', '--grid', grid, '--workers', '2', '--out', out, '--metrics-port', '0', '--json']);
  assert.equal(again.code, 0, again.stderr);
  const second = JSON.parse(again.stdout);
  assert.deepEqual([second.done, second.skipped, second.failed, second.runs_per_hour], [3, 3, 0, null]);
});

test('advclip sweep --help, and a grid run with a bad value names the run and the flag', async () => {
  const help = await runCli(['sweep', '--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /--grid GRID\.yaml/);
  assert.match(help.stdout, /--concurrency R/);
  const grid = join(tmp, 'bad.yaml');
  writeFileSync(grid, 'base:\n  model: test/fixtures/tiny-clip-f32\n  data: data/shapes-colours\ngrid:\n  tau: [1, x]\n');
  const bad = await runCli(['sweep', '--grid', grid, '--workers', '1']);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /run taux: --tau must be an integer/);
});
