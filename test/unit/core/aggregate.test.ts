/**
 * The aggregation rules, coordinate-wise: mean weighs by count; median and
 * trimmed-mean ignore a minority of arbitrary values and refuse too few.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { combine, fewestValues } from '../../../services/core/aggregate.ts';

const v = (...xs: number[]) => Float32Array.from(xs);

test('mean weighs each value by its count: the sum over every sample divided by their number', () => {
  assert.deepEqual([...combine({ rule: 'mean', trim: 1 }, [v(1, 10), v(4, -2)], [1, 3])], [3.25, 1]);
});

test('median is coordinate-wise: the middle value of each coordinate, or the mean of the middle two', () => {
  assert.deepEqual([...combine({ rule: 'median', trim: 1 }, [v(1, 9), v(5, 2), v(3, 4)], [1, 1, 1])], [3, 4]);
  assert.deepEqual([...combine({ rule: 'median', trim: 1 }, [v(1), v(7), v(3), v(100)], [1, 1, 1, 1])], [5]);
});

test('trimmed-mean drops the K largest and K smallest of each coordinate', () => {
  const values = [v(1, 0), v(2, 0), v(3, 0), v(4, 0), v(1000, -1000)];
  assert.deepEqual([...combine({ rule: 'trimmed-mean', trim: 1 }, values, [1, 1, 1, 1, 1])], [3, 0]);
  assert.deepEqual([...combine({ rule: 'trimmed-mean', trim: 2 }, values, [1, 1, 1, 1, 1])], [3, 0]);
});

test('robust rules weigh every worker the same, so a large claimed count does not buy influence', () => {
  const honest = [v(1), v(1.5), v(2)];
  const bad = v(-50);
  assert.deepEqual([...combine({ rule: 'median', trim: 1 }, [...honest, bad], [8, 8, 8, 1000])], [1.25]);
});

test('one value of five scaled by −10 or replaced by noise: median and trimmed-mean stay within the honest range, mean does not', () => {
  const honest = [v(0.9, -0.2), v(1.0, -0.1), v(1.1, -0.15), v(0.95, -0.12)];
  const lo = [0.9, -0.2];
  const hi = [1.1, -0.1];
  for (const bad of [honest[1].map((x) => -10 * x), v(37, -52)]) {
    const all = [...honest, bad];
    const counts = all.map(() => 4);
    for (const rule of ['median', 'trimmed-mean'] as const) {
      const out = combine({ rule, trim: 1 }, all, counts);
      out.forEach((x, j) => assert.ok(x >= lo[j] && x <= hi[j], `${rule}[${j}] = ${x}`));
    }
    const mean = combine({ rule: 'mean', trim: 1 }, all, counts);
    assert.ok(mean.some((x, j) => x < lo[j] || x > hi[j]), `mean ${[...mean]}`);
  }
});

test('too few values for the rule is an error naming the flags', () => {
  assert.equal(fewestValues({ rule: 'trimmed-mean', trim: 2 }), 5);
  assert.throws(() => combine({ rule: 'trimmed-mean', trim: 1 }, [v(1), v(2)], [1, 1]), /--aggregate trimmed-mean --trim 1 needs at least 3 workers' results, got 2/);
  assert.throws(() => combine({ rule: 'median', trim: 1 }, [], []), /needs at least 1/);
});
