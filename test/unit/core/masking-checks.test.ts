import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { attackSpec } from '../../../services/core/evaluate.ts';
import { addCounts, checkBatch, checkPlan, judgeChecks, zeroGradientCount, type CheckCounts } from '../../../services/core/masking-checks.ts';
import { attackBench, quantised, type AttackBench } from './attack-setup.ts';

let bench: AttackBench;
before(async () => {
  bench = await attackBench();
});
after(() => bench.dispose());

/** a cheap plan: the tiny model needs few iterations */
const plan = () => checkPlan(attackSpec({ attack: 'pgd', epsilon: 2 / 255, steps: 3, iterations: 5, targets: 2, queries: 30 }), 0.5);

const counts = (correct: Record<string, number>, zeroGradients = 0, n = 10): CheckCounts => ({ n, clean: n, correct, zeroGradients });
const honest = { pgd: 5, 'pgd-more-steps': 4, 'pgd-more-restarts': 4, 'apgd-ce': 3, 'apgd-t': 3, square: 6, 'pgd-large-epsilon': 0 };

test('the verdicts: each check fails on its own symptom and only on it', () => {
  const failed = (c: CheckCounts) =>
    judgeChecks(c, 4)
      .checks.filter((v) => !v.passed)
      .map((v) => v.name);
  assert.deepEqual(failed(counts(honest)), []);
  assert.deepEqual(failed(counts(honest, 2)), ['gradients-non-zero']);
  assert.deepEqual(failed(counts({ ...honest, square: 2 })), ['square-not-better-than-white-box']);
  assert.deepEqual(failed(counts({ ...honest, 'pgd-large-epsilon': 3 })), ['large-epsilon-reaches-chance']);
  assert.deepEqual(failed(counts({ ...honest, 'pgd-more-steps': 7, 'pgd-more-restarts': 7 })), ['more-steps-no-higher']);
  assert.deepEqual(failed(counts({ ...honest, 'pgd-more-steps': 6 })), [], 'one image of slack');
  assert.deepEqual(failed(counts({ ...honest, 'pgd-more-restarts': 6 })), ['more-restarts-no-higher']);
  const total = addCounts(addCounts(null, counts(honest)), counts(honest, 1));
  assert.equal(total.n, 20);
  assert.equal(total.correct.pgd, 10);
  assert.equal(total.zeroGradients, 1);
});

test('a model behind a non-differentiable quantiser is caught: zero gradients, and the checks fail', (t) => {
  const masked = quantised(bench.model);
  assert.equal(zeroGradientCount(masked, bench.x, bench.labels), bench.labels.length);
  const report = judgeChecks(checkBatch(masked, bench.x, bench.labels, bench.sampleIds, plan()), bench.classes, 0.5);
  t.diagnostic(report.checks.map((c) => `${c.passed ? 'pass' : 'FAIL'} ${c.name}: ${c.detail}`).join('; '));
  assert.equal(report.passed, false);
  assert.equal(report.checks.find((c) => c.name === 'gradients-non-zero')?.passed, false);
  assert.ok(report.accuracy['apgd-ce'] > report.accuracy.square || report.accuracy['pgd-large-epsilon'] > 1 / bench.classes, 'a second symptom besides the gradients');
});

test('the same model without the quantiser passes', (t) => {
  const memory = tf.memory().numTensors;
  const report = judgeChecks(checkBatch(bench.model, bench.x, bench.labels, bench.sampleIds, plan()), bench.classes, 0.5);
  t.diagnostic(report.checks.map((c) => `${c.passed ? 'pass' : 'FAIL'} ${c.name}: ${c.detail}`).join('; '));
  assert.equal(report.zeroGradients, 0);
  assert.ok(report.passed, report.checks.filter((c) => !c.passed).map((c) => `${c.name}: ${c.detail}`).join('; '));
  assert.equal(tf.memory().numTensors, memory, 'the checks leave no tensors behind');
});
