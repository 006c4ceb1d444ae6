/**
 * The RunSpec schema: every default in one place, one validation for flags,
 * YAML and the wire, errors that name the field as its source spells it.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseFlags } from '../../../services/cli/args.ts';
import { runSpecFrom } from '../../../services/cli/train-flags.ts';
import { coordinatorCommand } from '../../../services/cli/coordinator.ts';
import { trainCommand } from '../../../services/cli/train.ts';
import { parseRunSpec, RUN_DEFAULTS } from '../../../services/run/spec.ts';

const minimal = { model: 'm', data: { root: 'd' } };

test('defaults are ALGORITHM.md practice; iters and η_δ follow shots and ε', () => {
  const s = parseRunSpec(minimal);
  assert.equal(s.shots, 16);
  assert.equal(s.template, 'a photo of a {}.');
  assert.deepEqual({ rank: s.train.lora.rank, alpha: s.train.lora.alpha, dropout: s.train.lora.dropout }, { rank: 2, alpha: 1, dropout: 0.25 });
  assert.deepEqual(s.train.lora.targets, ['q_proj', 'k_proj', 'v_proj']);
  assert.equal(s.train.lora.layers, null);
  assert.equal(s.train.epsilon, 1 / 255);
  assert.equal(s.train.lrDelta, 0.5 / 255);
  assert.equal(s.train.iters, 500 * 16);
  assert.equal(s.train.batchSize, 32);
  assert.equal(s.train.sync, 'exact');
  const k4 = parseRunSpec({ ...minimal, shots: 4, train: { epsilon: 4 / 255 } });
  assert.equal(k4.train.iters, 2000);
  assert.equal(k4.train.lrDelta, 2 / 255);
  assert.deepEqual(RUN_DEFAULTS.train, { ...s.train });
});

test('the spec is frozen all the way down, and clip-lora has no ascent', () => {
  const s = parseRunSpec({ ...minimal, train: { method: 'clip-lora', tau: 5 } });
  assert.equal(s.train.tau, 0);
  assert.ok(Object.isFrozen(s) && Object.isFrozen(s.train) && Object.isFrozen(s.train.lora) && Object.isFrozen(s.train.lora.targets));
});

test('an error names the field and the value', () => {
  const cases: [unknown, RegExp][] = [
    [{ ...minimal, train: { epsilon: 2 } }, /^train\.epsilon must be in \[0, 1\], got 2$/],
    [{ ...minimal, train: { lora: { rank: 0 } } }, /^train\.lora\.rank must be a positive integer, got 0$/],
    [{ ...minimal, train: { method: 'adv' } }, /^train\.method must be one of advclip-lora\|clip-lora, got "adv"$/],
    [{ ...minimal, train: { lora: { targets: ['q_proj', 'gate'] } } }, /^train\.lora\.targets\.1 must be one of q_proj/],
    [{ ...minimal, template: 'no slot' }, /^template has no \{\} for the class name/],
    [{ ...minimal, colour: 'red' }, /^unknown field "colour"$/],
    [{ data: { root: 'd' } }, /^model is required$/],
  ];
  for (const [input, pattern] of cases) assert.throws(() => parseRunSpec(input), (e: Error) => pattern.test(e.message), JSON.stringify(input));
});

test('flags map onto the same spec, and errors name the flag', () => {
  const flags = parseFlags(trainCommand, ['--model', 'm', '--data', 'd', '--out', 'o', '--shots', '2', '--lora-layers', '0,1', '--lora-towers', 'vision', '--no-clean-loss', '--epsilon', '2/255']);
  const s = runSpecFrom(flags);
  assert.equal(s.shots, 2);
  assert.equal(s.train.iters, 1000);
  assert.deepEqual(s.train.lora.layers, [0, 1]);
  assert.deepEqual(s.train.lora.towers, ['vision']);
  assert.equal(s.train.cleanLoss, false);
  assert.equal(s.train.epsilon, 2 / 255);
  assert.deepEqual(runSpecFrom(parseFlags(trainCommand, ['--model', 'm', '--data', 'd', '--out', 'o'])), parseRunSpec(minimal), 'the flag defaults are the schema’s');
  const bad = (args: string[]) => () => runSpecFrom(parseFlags(trainCommand, ['--model', 'm', '--data', 'd', '--out', 'o', ...args]));
  assert.throws(bad(['--lora-rank', '0']), /^AdvclipError: --lora-rank must be a positive integer, got 0$/);
  assert.throws(bad(['--lora-targets', 'q_proj,gate']), /--lora-targets must be one of/);
  assert.throws(bad(['--batch-size', '0']), /--batch-size must be a positive integer, got 0/);
  assert.throws(bad(['--lora-layers', '0,x']), /--lora-layers must be an integer, got NaN/);
});

test('--aggregate and --trim of the coordinator map onto train.aggregation; a robust rule needs local-delta', () => {
  const flags = (args: string[]) => parseFlags(coordinatorCommand, ['--model', 'm', '--data', 'd', '--out', 'o', ...args]);
  const robust = runSpecFrom(flags(['--sync', 'local-delta', '--aggregate', 'trimmed-mean', '--trim', '2', '--chunk-size', '4']), 'local-delta');
  assert.deepEqual(robust.train.aggregation, { rule: 'trimmed-mean', trim: 2 });
  assert.deepEqual(parseRunSpec(minimal).train.aggregation, { rule: 'mean', trim: 1 });
  assert.throws(() => runSpecFrom(flags(['--aggregate', 'median']), 'exact'), /--aggregate median needs --sync local-delta/);
  assert.throws(() => runSpecFrom(flags(['--aggregate', 'trimmed-mean', '--trim', '0']), 'local-delta'), /^AdvclipError: --trim must be a positive integer, got 0$/);
});
