import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { crossEntropyLoss, evalStartKeys, pgd } from '../../../services/core/attacks.ts';
import { autoAttack, AutoAttackComponents, runComponent, type AutoAttackOptions } from '../../../services/core/autoattack.ts';
import { attackSpec, evaluateImages } from '../../../services/core/evaluate.ts';
import { attackBench, correctAt, deviation, type AttackBench } from './attack-setup.ts';

let bench: AttackBench;
before(async () => {
  bench = await attackBench();
});
after(() => bench.dispose());

/** reduced budgets: the tiny model needs few iterations, and the test must stay fast */
const options = (epsilon: number): AutoAttackOptions => ({ epsilon, iterations: 10, restarts: 1, targets: 3, queries: 40, startKeys: evalStartKeys(1, bench.sampleIds) });

test('AutoAttack: in the ε-ball and [0,1], accuracy never rises from one component to the next, and it is at most each component’s alone and PGD’s', (t) => {
  for (const eps of [0.5 / 255, 1 / 255]) {
    const opts = options(eps);
    const aa = autoAttack(bench.model, bench.x, bench.labels, opts);
    const d = deviation(aa.xAdv, bench.x);
    assert.ok(d.linf <= eps + 1e-6 && d.lo >= 0 && d.hi <= 1, `‖x_adv − x‖∞ = ${d.linf}, values in [${d.lo}, ${d.hi}]`);
    const final = correctAt(bench, aa.xAdv);
    assert.deepEqual(final, aa.robustAfter.square, 'the returned images are what the last stage reports');
    const count = (v: readonly boolean[]) => v.filter(Boolean).length;
    const stages = ['clean', ...AutoAttackComponents] as const;
    for (let s = 1; s < stages.length; s++) assert.ok(count(aa.robustAfter[stages[s]]) <= count(aa.robustAfter[stages[s - 1]]), `${stages[s]} after ${stages[s - 1]}`);
    const alone: Record<string, number> = {};
    for (const name of AutoAttackComponents) {
      const xAdv = runComponent(name, bench.model, bench.x, bench.labels, opts);
      const robust = correctAt(bench, xAdv);
      alone[name] = count(robust);
      assert.ok(count(final) <= alone[name], `AutoAttack ${count(final)} > ${name} alone ${alone[name]}`);
      xAdv.dispose();
    }
    const p = pgd(crossEntropyLoss(bench.model, bench.labels, bench.classes), bench.x, { epsilon: eps, steps: 10, randomStart: true, restarts: 1, startKeys: opts.startKeys });
    const pgdRobust = count(correctAt(bench, p));
    assert.ok(count(final) <= pgdRobust, `AutoAttack ${count(final)} > PGD-10 ${pgdRobust}`);
    t.diagnostic(
      `ε ${(eps * 255).toFixed(1)}/255, robust of ${bench.labels.length}: AutoAttack stages ${stages.map((s) => `${s} ${count(aa.robustAfter[s])}`).join(', ')}; alone ${Object.entries(alone).map(([k, v]) => `${k} ${v}`).join(', ')}, PGD-10 ${pgdRobust}`,
    );
    tf.dispose([aa.xAdv, p]);
  }
});

test('evaluateImages reports each stage of AutoAttack, and clean plus the attack otherwise', () => {
  const eps = 1 / 255;
  const spec = attackSpec({ attack: 'autoattack', epsilon: eps, iterations: 5, targets: 2, queries: 20 });
  const outcome = evaluateImages(bench.model, bench.x, bench.labels, bench.sampleIds, spec);
  assert.deepEqual(Object.keys(outcome.perAttack), ['clean', ...AutoAttackComponents]);
  assert.equal(outcome.perAttack.clean, bench.labels.length);
  assert.equal(outcome.perAttack.square, outcome.correct);
  const single = evaluateImages(bench.model, bench.x, bench.labels, bench.sampleIds, attackSpec({ attack: 'apgd-ce', epsilon: eps, iterations: 5 }));
  assert.deepEqual(Object.keys(single.perAttack), ['clean', 'apgd-ce']);
  assert.equal(single.perAttack['apgd-ce'], single.correct);
});

test('attack specs: defaults are AutoAttack’s, and a bad value says which flag', () => {
  const s = attackSpec({ attack: 'autoattack', epsilon: 4 / 255 });
  assert.deepEqual([s.iterations, s.queries, s.targets, s.restarts, s.steps], [100, 5000, 9, 1, 10]);
  assert.throws(() => attackSpec({ attack: 'square', epsilon: 4 / 255, queries: 0 }), /--queries must be a positive integer/);
  assert.throws(() => attackSpec({ attack: 'pgd', epsilon: 2 }), /--epsilon must be in \[0, 1\]/);
});
