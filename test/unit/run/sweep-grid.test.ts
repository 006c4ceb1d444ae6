/**
 * A grid file: base: flags shared by every run, grid: lists whose cartesian
 * product are the runs (first key outermost); run ids are short, stable and
 * unique; the sweep's own flags and malformed grids are refused with where.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AdvclipError } from '../../../services/core/errors.ts';
import { expandGrid, flagsAsArgv, parseGrid } from '../../../services/run/sweep-grid.ts';

const GRID = `
base:
  model: models/clip-small
  iters: 20
  no-clean-loss: true
grid:
  data: [data/colours, data/shapes-colours]
  shots: [1, 4]
  seed: [1, 2, 3]
  method: [advclip-lora, clip-lora]
`;

test('the runs are the cartesian product, first key outermost, each with the base flags', () => {
  const runs = expandGrid(parseGrid(GRID, 'grid.yaml'));
  assert.equal(runs.length, 2 * 2 * 3 * 2);
  assert.deepEqual(runs[0].varied, { data: 'data/colours', shots: 1, seed: 1, method: 'advclip-lora' });
  assert.deepEqual(runs[1].varied, { data: 'data/colours', shots: 1, seed: 1, method: 'clip-lora' });
  assert.deepEqual(runs.at(-1)!.varied, { data: 'data/shapes-colours', shots: 4, seed: 3, method: 'clip-lora' });
  assert.deepEqual(runs[0].flags, { model: 'models/clip-small', iters: 20, 'no-clean-loss': true, data: 'data/colours', shots: 1, seed: 1, method: 'advclip-lora' });
});

test('run ids name the varied values: a data set by its folder, a method bare, other flags as flag+value', () => {
  const runs = expandGrid(parseGrid(GRID, 'grid.yaml'));
  assert.equal(runs[0].id, 'colours_shots1_seed1_advclip-lora');
  assert.equal(runs.at(-1)!.id, 'shapes-colours_shots4_seed3_clip-lora');
  assert.equal(new Set(runs.map((r) => r.id)).size, runs.length);
  for (const r of runs) assert.match(r.id, /^[A-Za-z0-9_.-]+$/);
  // stable: the same grid gives the same ids
  assert.deepEqual(expandGrid(parseGrid(GRID, 'again.yaml')).map((r) => r.id), runs.map((r) => r.id));
});

test('values whose short forms collide get a hash of the full values; fractions and booleans read well', () => {
  const runs = expandGrid(parseGrid('grid:\n  data: [a/x, b/x]\n  epsilon: [1/255]\n  rslora: [true, false]\n', 'g.yaml'));
  assert.equal(runs.length, 4);
  assert.equal(new Set(runs.map((r) => r.id)).size, 4);
  assert.match(runs[0].id, /^x_epsilon1-255_rslora-[0-9a-f]{6}$/);
  assert.match(runs[1].id, /^x_epsilon1-255_no-rslora-[0-9a-f]{6}$/);
});

test('a run as the command line of advclip train: --flag=value, true booleans bare, false ones left out', () => {
  assert.deepEqual(flagsAsArgv({ model: 'm', epsilon: '1/255', tau: -1, rslora: true, 'reset-delta': false }), ['--model=m', '--epsilon=1/255', '--tau=-1', '--rslora']);
});

test('malformed grids and the sweep’s own flags are refused, naming the file and the key', () => {
  const refused = (text: string, pattern: RegExp) =>
    assert.throws(() => parseGrid(text, 'bad.yaml'), (e) => e instanceof AdvclipError && e.code === 'INVALID_ARGUMENT' && pattern.test(e.message) && e.message.startsWith('bad.yaml'));
  refused('base:\n  iters: 1\n', /grid: must be a mapping/);
  refused('grid: {}\n', /grid: is empty/);
  refused('grid:\n  seed: []\n', /grid.seed is an empty list/);
  refused('grid:\n  seed: [1, 1]\n', /grid.seed lists a value twice/);
  refused('grid:\n  out: [a]\n', /grid.out is set by advclip sweep/);
  refused('base:\n  checkpoint-dir: x\ngrid:\n  seed: [1]\n', /base.checkpoint-dir is set by advclip sweep/);
  refused('base:\n  seed: 1\ngrid:\n  seed: [1, 2]\n', /seed is in both/);
  refused('grids:\n  seed: [1]\n', /unknown key "grids"/);
  refused('grid:\n  seed: [{a: 1}]\n', /grid.seed\[0\] must be/);
  refused('grid: [1\n', /bad.yaml/);
});
