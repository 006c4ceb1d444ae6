/**
 * `advclip train` with its defaults on the shipped model and task: the
 * paper's universal δ ascent (raw mean gradient, η_δ calibrated once from
 * the first mean δ-gradient) moves δ to at least ε/2 in ℓ∞ from the first
 * step, and reports one η_δ for the whole run.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { runCli } from '../helpers/cli.ts';

const tmp = mkdtempSync(join(tmpdir(), 'advclip-train-defaults-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

test('default training on models/clip-small and data/shapes-colours moves δ to ‖δ‖∞ ≥ ε/2 at every step, with one calibrated η_δ', async () => {
  const out = join(tmp, 'run');
  const run = await runCli(['train', '--model', 'models/clip-small', '--data', 'data/shapes-colours', '--iters', '3', '--out', out, '--json'], { timeoutMs: 300_000 });
  assert.equal(run.code, 0, run.stderr);
  const trainJson = JSON.parse(readFileSync(join(out, 'train.json'), 'utf8')) as {
    config: { epsilon: number; deltaStep: string; deltaCalibration: string; perturbation: string; augment: string };
    history: { delta_linf: number; lr_delta: number }[];
  };
  const { config, history } = trainJson;
  assert.deepEqual([config.perturbation, config.deltaStep, config.deltaCalibration, config.augment], ['universal', 'grad', 'first-gradient', 'crop-flip']);
  assert.equal(history.length, 3);
  for (const [i, h] of history.entries()) {
    assert.ok(h.delta_linf >= config.epsilon / 2 && h.delta_linf <= config.epsilon + 1e-9, `step ${i}: ‖δ‖∞ = ${h.delta_linf * 255}/255`);
    assert.equal(h.lr_delta, history[0].lr_delta, 'η_δ is fixed for the run');
  }
  assert.ok(history[0].lr_delta > config.epsilon / 2, `the calibrated η_δ ${history[0].lr_delta} is larger than the raw ε/2 that barely moved δ`);
});
