/**
 * The `advclip demo` contract on short settings: --json prints demo.json,
 * with every method's clean, PGD (two ε) and AutoAttack accuracies, each
 * with its image count and 95 % interval; AutoAttack runs on a
 * class-balanced subset and reports its stages; demo.md holds the table and
 * the plots are written. Tiny model, 2 steps, a few images, tiny budgets.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { runCli } from '../helpers/cli.ts';

test('advclip demo --json: four methods × clean, PGD 1/255 and 4/255 on every image, AutoAttack on the subset, with intervals', async () => {
  const out = await mkdtemp(join(tmpdir(), 'advclip-demo-'));
  try {
    const args = ['demo', '--model', 'test/fixtures/tiny-clip-f32', '--backend', 'wasm', '--workers', '0', '--tasks', 'shapes-colours', '--shots', '1', '--iters', '2'];
    const short = ['--eval-limit', '20', '--curve-limit', '4', '--pgd-steps', '2', '--autoattack-per-class', '1', '--autoattack-iterations', '2', '--autoattack-queries', '5'];
    const run = await runCli([...args, ...short, '--out', out, '--json'], { timeoutMs: 600_000 });
    assert.equal(run.code, 0, run.stderr);
    const report = JSON.parse(run.stdout);
    assert.equal(report.interval, '95% Wilson score');
    assert.deepEqual(report.autoattack, { iterations: 2, targets: 9, queries: 5, per_class: 1 });
    const task = report.tasks['shapes-colours'];
    assert.deepEqual(Object.keys(task), ['chance', 'zero_shot', 'clip_lora', 'advclip_lora', 'advclip_lora_per_sample']);
    for (const [method, acc] of Object.entries(task).filter(([k]) => k !== 'chance') as [string, Record<string, any>][]) {
      for (const [column, n] of [['clean', 20], ['pgd_low', 20], ['pgd', 20], ['autoattack', 10]] as const) {
        const c = acc[column];
        assert.equal(c.n, n, `${method} ${column}`);
        assert.equal(c.accuracy, c.correct / c.n);
        assert.ok(c.ci95[0] <= c.accuracy && c.accuracy <= c.ci95[1], `${method} ${column}: ${c.accuracy} outside ${c.ci95}`);
      }
      assert.ok(acc.pgd.correct <= acc.clean.correct && acc.pgd_low.correct <= acc.clean.correct, `${method}: robust above clean`);
      const stages = Object.values(acc.autoattack_stages) as number[];
      assert.deepEqual(Object.keys(acc.autoattack_stages), ['clean', 'apgd-ce', 'apgd-t', 'fab-t', 'square']);
      for (let i = 1; i < stages.length; i++) assert.ok(stages[i] <= stages[i - 1], `${method}: AutoAttack stages rise ${stages}`);
      assert.equal(stages.at(-1), acc.autoattack.accuracy);
    }
    assert.equal(report.details['shapes-colours'].autoattack_images, 10);
    const md = await readFile(join(out, 'demo.md'), 'utf8');
    assert.match(md, /method +clean +PGD-2 1\/255 +PGD-2 4\/255 +AutoAttack 4\/255/);
    assert.match(md, /AdvCLIP-LoRA, universal δ \(paper\)/);
    assert.match(md, /AdvCLIP-LoRA, per-sample δ \(ours\)/);
    const files = await readdir(out);
    for (const f of ['demo.json', 'demo.md', 'shapes-colours-accuracy-vs-epsilon.png', 'shapes-colours-training-loss.png']) assert.ok(files.includes(f), `${f} not written`);
  } finally {
    await rm(out, { recursive: true, force: true });
  }
});
