import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mean, percentile, slope } from '../../../bench/stats.ts';

test('nearest-rank percentiles of unsorted samples', () => {
  const xs = [5, 1, 4, 2, 3, 10, 9, 8, 7, 6];
  assert.equal(percentile(xs, 50), 5);
  assert.equal(percentile(xs, 99), 10);
  assert.equal(percentile(xs, 10), 1);
  assert.equal(percentile([7], 99), 7);
  assert.ok(Number.isNaN(percentile([], 50)));
  const hundred = Array.from({ length: 100 }, (_, i) => 100 - i);
  assert.equal(percentile(hundred, 99), 99, 'p99 of 1..100 is the 99th value, not the maximum');
});

test('least-squares slope: exact on a line, zero when flat, NaN without spread in x', () => {
  assert.equal(slope([[0, 3], [100, 5], [200, 7]]), 0.02);
  assert.equal(slope([[0, 42], [100, 42], [200, 42], [300, 42]]), 0);
  assert.equal(slope([[0, 1], [1, 3], [2, 2], [3, 4]]), 0.8);
  assert.ok(Number.isNaN(slope([[5, 1], [5, 2]])));
  assert.equal(mean([1, 2, 3, 6]), 3);
});
