import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { AdvclipError } from '../../../services/core/errors.ts';
import type { LabeledImage } from '../../../services/io/dataset.ts';
import { sampleKShot } from '../../../services/io/kshot.ts';

/** `counts[c]` images of class c, interleaved across classes as a real listing might be. */
function pool(counts: readonly number[]): LabeledImage[] {
  const items: LabeledImage[] = [];
  const max = Math.max(0, ...counts);
  for (let i = 0; i < max; i++) {
    for (const [label, n] of counts.entries()) if (i < n) items.push({ path: `/d/c${label}/${i}.png`, label });
  }
  return items;
}

const isError = (code: string, ...texts: string[]) => (e: unknown) =>
  e instanceof AdvclipError && e.code === code && texts.every((t) => e.message.includes(t));

describe('sampleKShot', () => {
  test('shots per class, distinct, ordered by class, drawn from that class', () => {
    const items = pool([10, 7, 4]);
    const picks = sampleKShot(items, 3, 4, 1);
    assert.equal(picks.length, 12);
    assert.deepEqual(picks.map((p) => p.label), [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2]);
    assert.equal(new Set(picks.map((p) => p.path)).size, 12);
    for (const p of picks) assert.ok(items.includes(p));
    // a class with exactly `shots` images gives all of them
    assert.deepEqual(new Set(picks.slice(8).map((p) => p.path)), new Set(items.filter((i) => i.label === 2).map((i) => i.path)));
  });

  test('the same seed gives the same picks; seeds 1..3 differ', () => {
    const items = pool([50, 50]);
    assert.deepEqual(sampleKShot(items, 2, 16, 2), sampleKShot(items, 2, 16, 2));
    const bySeed = [1, 2, 3].map((s) => JSON.stringify(sampleKShot(items, 2, 16, s)));
    assert.equal(new Set(bySeed).size, 3);
    // seeds above 2^32 are distinct seeds, not wrapped
    assert.notDeepEqual(sampleKShot(items, 2, 16, 1), sampleKShot(items, 2, 16, 2 ** 32 + 1));
  });

  test('picks of a class depend only on (seed, class) and its images, not on other classes', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 3, max: 12 }), { minLength: 2, maxLength: 6 }),
        fc.integer({ min: 0, max: 2 ** 40 }),
        fc.integer({ min: 1, max: 3 }),
        (counts, seed, shots) => {
          const classes = counts.length;
          const full = sampleKShot(pool(counts), classes, shots, seed);
          const class0 = full.filter((p) => p.label === 0);
          // the same class 0, the other classes changed in size and one more class added
          const others = pool([counts[0], ...counts.slice(1).map((n) => n + 5), 4]);
          const changed = sampleKShot(others, classes + 1, shots, seed).filter((p) => p.label === 0);
          assert.deepEqual(changed, class0);
        },
      ),
      { numRuns: 60 },
    );
  });

  test('every image of a class can be picked (the draw is not stuck on a prefix)', () => {
    const items = pool([6]);
    const seen = new Set<string>();
    for (let seed = 0; seed < 60; seed++) for (const p of sampleKShot(items, 1, 1, seed)) seen.add(p.path);
    assert.equal(seen.size, 6);
  });

  test('more shots than a class has fails naming the class and its count', () => {
    const items = pool([5, 2, 5]);
    assert.throws(() => sampleKShot(items, 3, 4, 1), isError('INVALID_ARGUMENT', 'class 1', 'has 2', 'shots = 4'));
    assert.throws(() => sampleKShot(items, 3, 4, 1, ['ant', 'bee', 'cow']), isError('INVALID_ARGUMENT', '"bee"'));
    // a class with no images at all
    assert.throws(() => sampleKShot(items, 4, 1, 1), isError('INVALID_ARGUMENT', 'class 3', 'has 0'));
  });

  test('bad arguments are INVALID_ARGUMENT', () => {
    const items = pool([3]);
    assert.throws(() => sampleKShot(items, 1, 0, 1), isError('INVALID_ARGUMENT', 'shots'));
    assert.throws(() => sampleKShot(items, 1, 1.5, 1), isError('INVALID_ARGUMENT', 'shots'));
    assert.throws(() => sampleKShot(items, 1, 1, -1), isError('INVALID_ARGUMENT', 'seed'));
    assert.throws(() => sampleKShot(items, 0, 1, 1), isError('INVALID_ARGUMENT', 'numClasses'));
    assert.throws(() => sampleKShot(pool([2, 2]), 1, 1, 1), isError('INVALID_ARGUMENT', '/d/c1/0.png', 'label 1'));
  });
});
