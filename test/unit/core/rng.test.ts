import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mixKey, Purpose, RandomStream, wordOf } from '../../../services/core/rng.ts';

const draw = (s: RandomStream, n: number) => Array.from({ length: n }, () => s.nextU32());

test('a stream is a pure function of its key words', () => {
  assert.deepEqual(draw(RandomStream.of(1, 2, 3), 100), draw(RandomStream.of(1, 2, 3), 100));
  assert.notDeepEqual(draw(RandomStream.of(1, 2, 3), 10), draw(RandomStream.of(1, 2, 4), 10));
  assert.notDeepEqual(draw(RandomStream.of(1, 2, 3), 10), draw(RandomStream.of(3, 2, 1), 10), 'order of the words matters');
  assert.notDeepEqual(draw(RandomStream.of(1, 2), 10), draw(RandomStream.of(1, 2, 0), 10), 'a trailing 0 is a different key');
  assert.equal(mixKey(1, 2, 3), mixKey(1, 2, 3));
  assert.ok(Number.isInteger(mixKey(0xffffffff, -1)) && mixKey(0xffffffff) >= 0);
});

test('names become stable words (FNV-1a) and purposes never collide', () => {
  assert.equal(wordOf(''), 0x811c9dc5);
  assert.equal(wordOf('a'), 0xe40c292c);
  const words = Object.values(Purpose);
  assert.equal(new Set(words).size, words.length);
});

test('uniform draws are in [0,1) and roughly uniform (χ² over 20 bins, mean, neighbours uncorrelated)', () => {
  const s = RandomStream.of(42);
  const n = 100_000;
  const bins = new Array(20).fill(0);
  let sum = 0;
  let prev = s.uniform();
  let cross = 0;
  for (let i = 0; i < n; i++) {
    const u = s.uniform();
    assert.ok(u >= 0 && u < 1);
    assert.equal(Math.fround(u), u, 'exactly representable in float32');
    bins[Math.floor(u * 20)]++;
    sum += u;
    cross += (u - 0.5) * (prev - 0.5);
    prev = u;
  }
  const expected = n / 20;
  const chi2 = bins.reduce((c, b) => c + (b - expected) ** 2 / expected, 0);
  assert.ok(chi2 < 45, `χ² = ${chi2} with 19 degrees of freedom`);
  assert.ok(Math.abs(sum / n - 0.5) < 0.005);
  assert.ok(Math.abs(cross / n / (1 / 12)) < 0.02, 'lag-1 correlation');
});

test('normal draws have mean 0 and variance 1; below(n) stays in range', () => {
  const s = RandomStream.of(7);
  const xs = Array.from({ length: 50_000 }, () => s.normal());
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const variance = xs.reduce((a, b) => a + (b - mean) ** 2, 0) / xs.length;
  assert.ok(Math.abs(mean) < 0.02 && Math.abs(variance - 1) < 0.03, `mean ${mean}, variance ${variance}`);
  const counts = new Array(7).fill(0);
  for (let i = 0; i < 7000; i++) counts[s.below(7)]++;
  assert.ok(counts.every((c) => c > 850 && c < 1150), counts.join(','));
});

test('permutations are permutations, deterministic, and put each element anywhere about equally', () => {
  const p = RandomStream.of(3).permutation(50);
  assert.deepEqual([...p].sort((a, b) => a - b), Array.from({ length: 50 }, (_, i) => i));
  assert.deepEqual(RandomStream.of(3).permutation(50), p);
  assert.deepEqual(RandomStream.of(3).permutation(0), []);
  const where = new Array(5).fill(0);
  for (let k = 0; k < 5000; k++) where[RandomStream.of(11, k).permutation(5).indexOf(0)]++;
  assert.ok(where.every((c) => c > 850 && c < 1150), where.join(','));
});
