import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { crossEntropyLoss, evalStartKeys, pgd } from '../../../services/core/attacks.ts';
import { square, squareFraction } from '../../../services/core/square.ts';
import { attackBench, correctAt, countingGradients, deviation, type AttackBench } from './attack-setup.ts';
import { bitwiseEqual } from './numeric.ts';

let bench: AttackBench;
before(async () => {
  bench = await attackBench();
});
after(() => bench.dispose());
const keys = (seed = 1) => evalStartKeys(seed, bench.sampleIds);

test('the window fraction halves on AutoAttack’s schedule, rescaled to the budget', () => {
  assert.equal(squareFraction(0.8, 1, 10000), 0.8);
  assert.equal(squareFraction(0.8, 11, 10000), 0.4);
  assert.equal(squareFraction(0.8, 201, 10000), 0.1);
  assert.equal(squareFraction(0.8, 9000, 10000), 0.8 / 512);
  assert.equal(squareFraction(0.8, 1000, 5000), squareFraction(0.8, 2000, 10000));
});

test('Square never asks for a gradient (backward passes counted), while PGD through the same counter does', () => {
  const counted = countingGradients(bench.model);
  const xAdv = square(counted.model, bench.x, bench.labels, { epsilon: 8 / 255, queries: 30, startKeys: keys() });
  assert.equal(counted.backward(), 0, 'Square ran a backward pass');
  const p = pgd(crossEntropyLoss(counted.model, bench.labels, bench.classes), bench.x, { epsilon: 8 / 255, steps: 2, randomStart: true, restarts: 1, startKeys: keys() });
  assert.equal(counted.backward(), 2, 'the counter sees each PGD step');
  tf.dispose([xAdv, p]);
});

test('Square stays in the ε-ball and in [0,1], and fools some samples', (t) => {
  for (const eps of [1 / 255, 16 / 255]) {
    const xAdv = square(bench.model, bench.x, bench.labels, { epsilon: eps, queries: 60, startKeys: keys() });
    const d = deviation(xAdv, bench.x);
    assert.ok(d.linf <= eps + 1e-6, `‖x_adv − x‖∞ = ${d.linf}`);
    assert.ok(d.lo >= 0 && d.hi <= 1, `values in [${d.lo}, ${d.hi}]`);
    const robust = correctAt(bench, xAdv).filter(Boolean).length;
    t.diagnostic(`ε ${(eps * 255).toFixed(0)}/255, 60 queries: ${robust} of ${bench.labels.length} robust`);
    if (eps === 16 / 255) assert.ok(robust < bench.labels.length, 'Square fools some sample at 16/255');
    xAdv.dispose();
  }
});

test('Square is reproducible for a seed, its search depends on the seed, and a sample’s result not on its batch', () => {
  const run = (seed: number, rows = bench.sampleIds.map((_, i) => i)) => {
    const xs = tf.gather(bench.x, rows) as tf.Tensor4D;
    const out = square(bench.model, xs, rows.map((i) => bench.labels[i]), { epsilon: 2 / 255, queries: 20, startKeys: rows.map((i) => keys(seed)[i]) });
    const data = out.dataSync() as Float32Array;
    tf.dispose([xs, out]);
    return data;
  };
  const a = run(1);
  assert.ok(bitwiseEqual(a, run(1)));
  assert.ok(!bitwiseEqual(a, run(2)));
  const per = a.length / bench.labels.length;
  const some = run(1, [2, 5]);
  assert.ok(bitwiseEqual(some.subarray(0, per), a.subarray(2 * per, 3 * per)) && bitwiseEqual(some.subarray(per), a.subarray(5 * per, 6 * per)));
});
