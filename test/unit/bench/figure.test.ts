import { test } from 'node:test';
import assert from 'node:assert/strict';
import { goalMet, ratioOf, unavailable, type Figure } from '../../../bench/figure.ts';
import { renderTable } from '../../../bench/table.ts';

const fraction: Figure = { id: 's', label: 'step', value: 120, unit: 'GFLOP/s', ratio: { value: 0.3, of: 'peak' }, goal: { op: '>=', target: 0.5, on: 'ratio' } };

test('a goal is read on the ratio or the value it names; unmeasured figures meet nothing', () => {
  assert.equal(goalMet(fraction), false);
  assert.equal(goalMet({ ...fraction, ratio: { value: 0.5, of: 'peak' } }), true);
  assert.equal(goalMet({ id: 'b', label: 'p99', value: 12, unit: 'ms', goal: { op: '<=', target: 20, on: 'value' } }), true);
  assert.equal(goalMet({ id: 'b', label: 'p99', value: 21, unit: 'ms', goal: { op: '<=', target: 20, on: 'value' } }), false);
  assert.equal(goalMet(unavailable('x', 'x', 's', 'not built', { op: '<=', target: 1, on: 'ratio' })), null);
  assert.equal(goalMet({ ...fraction, goal: undefined }), null);
});

test('ratios of missing or zero figures are null, not NaN or Infinity', () => {
  assert.equal(ratioOf(3, 2), 1.5);
  assert.equal(ratioOf(3, 0), null);
  assert.equal(ratioOf(undefined, 2), null);
  assert.equal(ratioOf(3, null), null);
});

test('the table prints every figure with its ratio, goal and note', () => {
  const text = renderTable([{ title: 'Step', figures: [fraction, unavailable('t', 'torch', 's/step', 'torch not installed')] }]);
  assert.match(text, /## Step/);
  assert.match(text, /step\s+120 GFLOP\/s\s+0\.300× peak\s+ratio ≥ 0\.5×\s+\(not met\)/);
  assert.match(text, /torch\s+n\/a/);
  assert.match(text, /\n {4}torch not installed/);
});

test('the table prints byte counts in kB, MB, GB', () => {
  const bytes = (id: string, value: number): Figure => ({ id, label: id, value, unit: 'bytes' });
  const text = renderTable([{ title: 'Network', figures: [bytes('small', 950), bytes('tasks', 159586.7), bytes('results', 8_123_456)] }]);
  assert.match(text, /small\s+950 bytes/);
  assert.match(text, /tasks\s+160 kB/);
  assert.match(text, /results\s+8\.12 MB/);
});
