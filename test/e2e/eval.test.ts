/**
 * The `advclip eval` contract: one JSON object on stdout with the accuracy
 * after the attack and after each stage (AutoAttack's components in order),
 * the --check verdicts, exit status 1 exactly when a check fails, and clear
 * errors for bad budgets. Tiny model, few images, reduced budgets.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runCli } from '../helpers/cli.ts';

const base = ['eval', '--model', 'test/fixtures/tiny-clip-f32', '--data', 'data/shapes-colours', '--limit', '6', '--backend', 'wasm', '--epsilon', '4/255', '--json'];
const budgets = ['--iterations', '3', '--queries', '10', '--targets', '2', '--steps', '2'];

describe('advclip eval', () => {
  it('--attack autoattack prints per_attack: clean, then each component in order; the last equals accuracy', async () => {
    const run = await runCli([...base, ...budgets, '--attack', 'autoattack']);
    assert.equal(run.code, 0, run.stderr);
    const out = JSON.parse(run.stdout);
    for (const key of ['accuracy', 'n', 'attack', 'epsilon', 'per_attack', 'loss', 'seconds', 'split', 'classes', 'chance']) assert.ok(key in out, `missing "${key}"`);
    assert.equal(out.attack, 'autoattack');
    assert.equal(out.n, 6);
    assert.ok(Math.abs(out.epsilon - 4 / 255) < 1e-12);
    assert.deepEqual(Object.keys(out.per_attack), ['clean', 'apgd-ce', 'apgd-t', 'fab-t', 'square']);
    const stages = Object.values(out.per_attack) as number[];
    for (let i = 1; i < stages.length; i++) assert.ok(stages[i] <= stages[i - 1], `per_attack rises: ${JSON.stringify(out.per_attack)}`);
    assert.equal(out.per_attack.square, out.accuracy);
  });

  it('--check prints five verdicts and exits 1 exactly when one fails', async () => {
    const run = await runCli([...base, ...budgets, '--attack', 'pgd', '--check']);
    const out = JSON.parse(run.stdout);
    assert.deepEqual(
      out.check.checks.map((c: { name: string }) => c.name),
      ['gradients-non-zero', 'square-not-better-than-white-box', 'large-epsilon-reaches-chance', 'more-steps-no-higher', 'more-restarts-no-higher'],
    );
    assert.equal(out.check.passed, out.check.checks.every((c: { passed: boolean }) => c.passed));
    assert.equal(run.code, out.check.passed ? 0 : 1, run.stderr);
    if (!out.check.passed) assert.match(run.stderr, /gradient-masking check\(s\) failed/);
  });

  it('a bad budget says which flag', async () => {
    const run = await runCli([...base, '--attack', 'square', '--queries', '0']);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /--queries must be a positive integer, got 0/);
  });
});
