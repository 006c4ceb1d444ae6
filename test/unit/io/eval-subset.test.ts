import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { AdvclipError } from '../../../services/core/errors.ts';
import type { LabeledImage } from '../../../services/io/dataset.ts';
import { balancedSubset } from '../../../services/io/eval-subset.ts';

function pool(counts: readonly number[]): LabeledImage[] {
  return counts.flatMap((n, label) => Array.from({ length: n }, (_, i) => ({ path: `/t/c${label}/${i}.png`, label })));
}

const perClass = (items: readonly LabeledImage[], classes: number) => Array.from({ length: classes }, (_, c) => items.filter((i) => i.label === c).length);

test('the subset is class-balanced: each class has ⌊M/C⌋ or one more, as far as it has images', () => {
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 0, max: 12 }), { minLength: 1, maxLength: 6 }), fc.integer({ min: 1, max: 80 }), fc.integer({ min: 0, max: 1000 }), (counts, limit, seed) => {
      const items = pool(counts);
      const picked = balancedSubset(items, counts.length, limit, seed);
      assert.equal(picked.length, Math.min(limit, items.length));
      assert.equal(new Set(picked.map((p) => p.path)).size, picked.length, 'no image twice');
      const got = perClass(picked, counts.length);
      // a class short of images gives all it has; the others differ by at most one
      const notExhausted = got.filter((n, c) => n < counts[c]);
      if (notExhausted.length) assert.ok(Math.max(...notExhausted) - Math.min(...notExhausted) <= 1, `unbalanced: ${got} of ${counts}`);
      for (const [c, n] of got.entries()) if (n < counts[c]) assert.ok(got.every((m) => m <= n + 1), `class ${c} has ${n}, another more than one more: ${got}`);
    }),
  );
});

test('the subset is a function of the seed, and each class is drawn from its own shuffle', () => {
  const items = pool([10, 10, 10]);
  assert.deepEqual(balancedSubset(items, 3, 9, 5), balancedSubset(items, 3, 9, 5));
  assert.notDeepEqual(balancedSubset(items, 3, 9, 5), balancedSubset(items, 3, 9, 6));
  // round robin over the classes: a chunk of consecutive positions mixes classes
  assert.deepEqual(balancedSubset(items, 3, 6, 1).map((i) => i.label), [0, 1, 2, 0, 1, 2]);
});

test('a bad limit or label is refused saying what and where', () => {
  assert.throws(() => balancedSubset(pool([2]), 1, 0, 1), (e: unknown) => e instanceof AdvclipError && /limit must be an integer ≥ 1, got 0/.test(e.message));
  assert.throws(() => balancedSubset([{ path: '/t/x.png', label: 3 }], 2, 1, 1), (e: unknown) => e instanceof AdvclipError && /\/t\/x\.png.*label 3, out of range \[0, 2\)/.test(e.message));
});
