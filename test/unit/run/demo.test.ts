/**
 * The demo's table as a specification: its 95 % Wilson intervals, the
 * methods it runs, and a row per method with each column's image count.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cell, demoMethods, parsePerturbations, table, wilson95, type TaskResult } from '../../../services/run/demo.ts';

const close = (a: number, b: number, tol = 5e-4) => Math.abs(a - b) <= tol;

test('wilson95: the score interval of published examples; symmetric in successes and failures; inside [0, 1]', () => {
  const cases: [number, number, number, number][] = [
    [0, 20, 0, 0.1611],
    [13, 20, 0.4329, 0.8188],
    [50, 100, 0.4038, 0.5962],
    [20, 20, 0.8389, 1],
  ];
  for (const [k, n, lo, hi] of cases) {
    const [a, b] = wilson95(k, n);
    assert.ok(close(a, lo) && close(b, hi), `${k}/${n}: [${a}, ${b}], expected [${lo}, ${hi}]`);
  }
  for (const [k, n] of [[3, 17], [1, 300], [299, 300]]) {
    const [a, b] = wilson95(k, n);
    const [c, d] = wilson95(n - k, n);
    assert.ok(close(a, 1 - d, 1e-12) && close(b, 1 - c, 1e-12), `${k}/${n} is not the mirror of ${n - k}/${n}`);
    assert.ok(a >= 0 && a <= k / n && k / n <= b && b <= 1);
  }
});

test('the methods: zero-shot and CLIP-LoRA always, then the AdvCLIP-LoRA of each perturbation asked for', () => {
  assert.deepEqual(demoMethods(parsePerturbations('universal,per-sample')), ['zero_shot', 'clip_lora', 'advclip_lora', 'advclip_lora_per_sample']);
  assert.deepEqual(demoMethods(parsePerturbations('per-sample')), ['zero_shot', 'clip_lora', 'advclip_lora_per_sample']);
  assert.throws(() => parsePerturbations('universal,madry'), /--perturbation: "madry" is not one of universal\|per-sample/);
});

test('the table: one row per method run, each cell with its interval, each column with its image count', () => {
  const accuracies = (clean: number, low: number, high: number, aa: number | null) => ({
    clean: cell(clean, 300),
    pgd_low: cell(low, 300),
    pgd: cell(high, 300),
    autoattack: aa === null ? null : cell(aa, 20),
    autoattack_stages: null,
  });
  const result: TaskResult = {
    chance: 0.1,
    classes: 10,
    test_images: 300,
    autoattack_images: 20,
    autoattack_per_class: 2,
    methods: { zero_shot: accuracies(177, 90, 14, 1), clip_lora: accuracies(180, 91, 6, 0), advclip_lora_per_sample: accuracies(183, 120, 52, null) },
    curve: {},
    curve_images: 50,
    loss: {},
    train_seconds: {},
  };
  const text = table({ 'shapes-colours': result }, { epsilon: 4 / 255, lowEpsilon: 1 / 255, pgdSteps: 10, autoattack: { iterations: 100, targets: 9, queries: 5000 }, run: '16-shot' });
  assert.match(text, /95% Wilson score interval/);
  assert.match(text, /shapes-colours \(10 classes, chance 10\.0%; clean and PGD on all 300 test images, AutoAttack on 20 \(2 per class\)\)/);
  const lines = text.split('\n');
  const head = lines.findIndex((l) => l.trimStart().startsWith('method'));
  assert.deepEqual(lines[head].trim().split(/\s{2,}/), ['method', 'clean', 'PGD-10 1/255', 'PGD-10 4/255', 'AutoAttack 4/255']);
  assert.deepEqual(lines[head + 1].trim().split(/\s{2,}/), ['n = 300', 'n = 300', 'n = 300', 'n = 20']);
  assert.equal(lines[head + 2].trim(), 'zero-shot                           59.0 [53.4, 64.4]   30.0 [25.1, 35.4]    4.7 [ 2.8,  7.7]    5.0 [ 0.9, 23.6]');
  assert.match(lines[head + 3], /^ {2}CLIP-LoRA /);
  assert.match(lines[head + 4], /^ {2}AdvCLIP-LoRA, per-sample δ \(ours\) .* —$/);
  assert.equal(lines.length, head + 6, 'no row for a method the demo did not run');
});
