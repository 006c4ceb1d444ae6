import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { apgdCe, apgdCheckpoints, apgdRun, apgdTargeted, ceLoss, dlrTargetedLoss } from '../../../services/core/apgd.ts';
import { crossEntropyLoss, evalStartKeys, pgd } from '../../../services/core/attacks.ts';
import { attackBench, deviation, type AttackBench } from './attack-setup.ts';
import { bitwiseEqual } from './numeric.ts';

let bench: AttackBench;
before(async () => {
  bench = await attackBench();
});
after(() => bench.dispose());
const keys = () => evalStartKeys(1, bench.sampleIds);

test('checkpoints fall at 22%, then at intervals shrinking by 3% down to 6% (the paper’s p_j for N = 100)', () => {
  assert.deepEqual(apgdCheckpoints(100), [22, 41, 57, 70, 80, 87, 93, 99]);
  assert.deepEqual(apgdCheckpoints(10), [2, 3, 4, 5, 6, 7, 8, 9, 10]);
  assert.deepEqual(apgdCheckpoints(1), [1]);
});

test('targeted DLR: −(z_y − z_t) / (z_π1 − (z_π3 + z_π4)/2)', () => {
  const z = tf.tensor2d([
    [5, 1, 3, 0, 2],
    [0, 4, 1, 2, 8],
  ]);
  const got = tf.tidy(() => Array.from(dlrTargetedLoss([0, 1], [2, 4])(z).dataSync()));
  // row 0: sorted 5,3,2,1 → −(5 − 3)/(5 − 1.5); row 1: sorted 8,4,2,1 → −(4 − 8)/(8 − 1.5)
  assert.ok(Math.abs(got[0] - -2 / 3.5) < 1e-6, `row 0: ${got[0]}`);
  assert.ok(Math.abs(got[1] - 4 / 6.5) < 1e-6, `row 1: ${got[1]}`);
  z.dispose();
});

describe('APGD stays in the ε-ball and in [0,1]', () => {
  for (const eps of [1 / 255, 8 / 255, 0.3]) {
    test(`ε = ${eps.toFixed(4)}`, () => {
      const memory = tf.memory().numTensors;
      const ce = apgdCe(bench.model, bench.x, bench.labels, { epsilon: eps, iterations: 5, restarts: 2, startKeys: keys() });
      const t = apgdTargeted(bench.model, bench.x, bench.labels, { epsilon: eps, iterations: 5, restarts: 1, targets: 3, startKeys: keys() });
      for (const [name, xAdv] of [['APGD-CE', ce], ['APGD-T', t]] as const) {
        const d = deviation(xAdv, bench.x);
        assert.ok(d.linf <= eps + 1e-6, `${name}: ‖x_adv − x‖∞ = ${d.linf} > ε`);
        assert.ok(d.lo >= 0 && d.hi <= 1, `${name}: values in [${d.lo}, ${d.hi}]`);
      }
      tf.dispose([ce, t]);
      assert.equal(tf.memory().numTensors, memory, 'APGD leaves no tensors behind');
    });
  }
});

test('APGD-CE reaches at least the loss of PGD (step ε/4) at equal iterations: summed over budgets, and at the largest one', (t) => {
  const loss = crossEntropyLoss(bench.model, bench.labels, bench.classes);
  const mean = (v: ArrayLike<number>) => Array.from(v).reduce((a, b) => a + b, 0) / v.length;
  let [sumApgd, sumPgd] = [0, 0];
  const rows: string[] = [];
  for (const eps of [1 / 255, 4 / 255]) {
    for (const iterations of [10, 20, 50]) {
      const run = apgdRun(bench.model, bench.x, bench.labels, ceLoss(bench.labels), { epsilon: eps, iterations, startKeys: keys() }, [0]);
      const p = pgd(loss, bench.x, { epsilon: eps, steps: iterations, randomStart: true, restarts: 1, startKeys: keys() });
      const [la, lp] = [mean(run.bestLoss), tf.tidy(() => tf.mean(loss(p)).dataSync()[0])];
      rows.push(`ε ${(eps * 255).toFixed(0)}/255, ${iterations} it: APGD ${la.toFixed(3)}, PGD ${lp.toFixed(3)}`);
      sumApgd += la;
      sumPgd += lp;
      if (iterations === 50) assert.ok(la >= lp * (1 - 1e-4), rows.at(-1));
      tf.dispose([run.xAdv, p]);
    }
  }
  t.diagnostic(`mean CE — ${rows.join('; ')}`);
  assert.ok(sumApgd >= sumPgd, `summed over budgets: APGD ${sumApgd} < PGD ${sumPgd}`);
});

test('APGD is reproducible, and a sample’s result does not depend on the rest of its batch', () => {
  const opts = { epsilon: 8 / 255, iterations: 4, restarts: 1, targets: 2, startKeys: keys() };
  const all = apgdTargeted(bench.model, bench.x, bench.labels, opts);
  const again = apgdTargeted(bench.model, bench.x, bench.labels, opts);
  assert.ok(bitwiseEqual(all.dataSync() as Float32Array, again.dataSync() as Float32Array));
  const rows = [1, 4, 6];
  const xs = tf.gather(bench.x, rows) as tf.Tensor4D;
  const some = apgdTargeted(bench.model, xs, rows.map((i) => bench.labels[i]), { ...opts, startKeys: rows.map((i) => opts.startKeys[i]) });
  const fromAll = tf.gather(all, rows);
  const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(fromAll, some))).dataSync()[0]);
  assert.ok(diff <= 1e-6, `rows differ by ${diff}`);
  tf.dispose([all, again, xs, some, fromAll]);
});

test('APGD-CE and APGD-T each fool some samples at 16/255', (t) => {
  const robust = (xAdv: tf.Tensor4D) => {
    const p = tf.tidy(() => tf.argMax(bench.model(xAdv), 1).dataSync());
    xAdv.dispose();
    return bench.labels.filter((y, i) => p[i] === y).length;
  };
  const rows: string[] = [];
  for (const eps of [1 / 255, 4 / 255, 16 / 255]) {
    const ce = robust(apgdCe(bench.model, bench.x, bench.labels, { epsilon: eps, iterations: 10, restarts: 1, startKeys: keys() }));
    const tg = robust(apgdTargeted(bench.model, bench.x, bench.labels, { epsilon: eps, iterations: 10, restarts: 1, targets: 3, startKeys: keys() }));
    rows.push(`ε ${(eps * 255).toFixed(0)}/255: robust after APGD-CE ${ce}, APGD-T ${tg} of ${bench.labels.length}`);
    if (eps === 16 / 255) assert.ok(ce < bench.labels.length && tg < bench.labels.length, rows.at(-1));
  }
  t.diagnostic(rows.join('; '));
});
