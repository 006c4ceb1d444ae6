import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseFlags } from '../../../services/cli/args.ts';
import { runSpecFrom } from '../../../services/cli/train-flags.ts';
import { trainCommand } from '../../../services/cli/train.ts';
import { AdvclipError } from '../../../services/core/errors.ts';
import { Attacks } from '../../../services/core/evaluate.ts';

const specOf = (...argv: string[]) => runSpecFrom(parseFlags(trainCommand, ['--model', 'm', '--data', 'd', '--out', 'o', ...argv])).train;
const specWithSync = (sync: 'exact' | 'local-delta', ...argv: string[]) => runSpecFrom(parseFlags(trainCommand, ['--model', 'm', '--data', 'd', '--out', 'o', ...argv]), sync).train;

test("the default δ ascent is the paper's: universal δ, raw mean gradient, η_δ calibrated so the first step moves ε/2 per pixel (RMS)", () => {
  const s = specOf();
  assert.equal(s.perturbation, 'universal');
  assert.equal(s.deltaStep, 'grad');
  assert.equal(s.deltaCalibration, 'first-gradient');
  assert.equal(s.epsilon, 1 / 255);
  assert.equal(s.lrDelta, 1 / 255 / 2);
  assert.equal(s.resetDeltaEachEpoch, false, 'δ is carried across steps and epochs');
  assert.equal(specOf('--epsilon', '4/255').lrDelta, 2 / 255, 'ε/2 of the run’s ε');
});

test('per-sample δ defaults to Madry’s signed steps of ε/4; sign steps need no calibration; explicit flags win', () => {
  const p = specOf('--perturbation', 'per-sample');
  assert.deepEqual([p.deltaStep, p.lrDelta, p.deltaCalibration], ['sign', 1 / 255 / 4, 'none']);
  const sign = specOf('--delta-step', 'sign');
  assert.deepEqual([sign.deltaStep, sign.lrDelta, sign.deltaCalibration], ['sign', 1 / 255 / 2, 'none']);
  const signExplicit = specOf('--delta-step', 'sign', '--delta-calibration', 'first-gradient');
  assert.equal(signExplicit.deltaCalibration, 'none', 'a signed step has its length already');
  const raw = specOf('--delta-calibration', 'none', '--lr-delta', '0.3');
  assert.deepEqual([raw.deltaStep, raw.lrDelta, raw.deltaCalibration], ['grad', 0.3, 'none']);
});

test('local-delta defaults to signed steps of ε/2: no process sees the run’s first mean δ-gradient there', () => {
  const l = specWithSync('local-delta');
  assert.deepEqual([l.deltaStep, l.lrDelta, l.deltaCalibration], ['sign', 1 / 255 / 2, 'none']);
});

test('calibration where no process sees the first mean δ-gradient is refused, saying what to pass instead', () => {
  const refused = (f: () => unknown, pattern: RegExp) => assert.throws(f, (e: unknown) => e instanceof AdvclipError && e.code === 'INVALID_ARGUMENT' && pattern.test(e.message));
  refused(() => specWithSync('local-delta', '--delta-step', 'grad', '--delta-calibration', 'first-gradient'), /first-gradient needs --sync exact.*--delta-calibration none with an --lr-delta.*--delta-step sign/);
  refused(() => specOf('--perturbation', 'per-sample', '--delta-step', 'grad', '--delta-calibration', 'first-gradient'), /calibrates the universal δ/);
  assert.equal(specWithSync('local-delta', '--delta-step', 'sign').sync, 'local-delta');
  assert.equal(specWithSync('local-delta', '--delta-calibration', 'none', '--lr-delta', '0.2').deltaCalibration, 'none');
  assert.equal(specOf('--perturbation', 'per-sample', '--delta-step', 'grad').deltaCalibration, 'none', 'per-sample raw steps default to η_δ = --lr-delta');
});

test('evaluation during training is off by default; its flags map onto the RunSpec, ε defaulting to the training ε', () => {
  const evaluation = (...argv: string[]) => runSpecFrom(parseFlags(trainCommand, ['--model', 'm', '--data', 'd', '--out', 'o', ...argv])).evaluation;
  assert.deepEqual(evaluation(), { every: 0, attack: 'pgd', limit: 256, epsilon: 1 / 255, steps: 10 });
  assert.equal(evaluation('--epsilon', '4/255').epsilon, 4 / 255);
  assert.equal(evaluation('--eval-attack', 'none', '--eval-epsilon', '4/255').epsilon, 0, 'a clean evaluation has no radius');
  assert.deepEqual(evaluation('--eval-every', '5', '--eval-attack', 'fgsm', '--eval-limit', '40', '--eval-epsilon', '2/255', '--eval-steps', '3'), { every: 5, attack: 'fgsm', limit: 40, epsilon: 2 / 255, steps: 3 });
});

test('a bad evaluation flag is refused naming the flag and the value', () => {
  const refused = (argv: string[], pattern: RegExp) =>
    assert.throws(
      () => runSpecFrom(parseFlags(trainCommand, ['--model', 'm', '--data', 'd', '--out', 'o', ...argv])),
      (e: unknown) => e instanceof AdvclipError && e.code === 'INVALID_ARGUMENT' && pattern.test(e.message),
    );
  refused(['--eval-every', '-1'], /^--eval-every must be a non-negative integer, got -1$/);
  refused(['--eval-every', '1.5'], /^--eval-every must be an integer, got "1\.5"$/);
  refused(['--eval-attack', 'cw'], new RegExp(`^--eval-attack must be one of ${Attacks.join('\\|')}, got "cw"$`));
  refused(['--eval-limit', '0'], /^--eval-limit must be a positive integer, got 0$/);
  refused(['--eval-epsilon', '2'], /^--eval-epsilon must be in \[0, 1\], got 2$/);
  refused(['--eval-steps', '0'], /^--eval-steps must be a positive integer, got 0$/);
});
