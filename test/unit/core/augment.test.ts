import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { augmentImages, randomCropBox } from '../../../services/core/augment.ts';
import { initBackend } from '../../../services/core/backend.ts';
import { bitwiseEqual } from './numeric.ts';

before(async () => {
  await initBackend('wasm');
});

const S = 8;
/** pixel value = its column index, in every row and channel */
const ramp = () => tf.tensor4d(Float32Array.from({ length: 2 * S * S * 3 }, (_, i) => Math.floor(i / 3) % S), [2, S, S, 3]);
const firstRow = (t: tf.Tensor, n = 0) => Array.from(t.dataSync()).slice(n * S * S * 3, n * S * S * 3 + S * 3).filter((_, i) => i % 3 === 0);

test("'none' is the identity", () => {
  const x = ramp();
  assert.equal(augmentImages(x, 'none', 1, 0, [0, 1]), x);
  x.dispose();
});

test('crop boxes are keyed by (seed, step, sample), inside the image, with area ≥ 8% and flips about half the time', () => {
  assert.deepEqual(randomCropBox(1, 2, 3, 224), randomCropBox(1, 2, 3, 224));
  const boxes = Array.from({ length: 400 }, (_, s) => randomCropBox(1, 0, s, 224));
  let flips = 0;
  for (const b of boxes) {
    const [x1, x2] = b.x1 <= b.x2 ? [b.x1, b.x2] : (flips++, [b.x2, b.x1]);
    assert.ok(b.y1 >= 0 && b.y2 <= 1 && x1 >= 0 && x2 <= 1 && b.y2 > b.y1 && x2 > x1);
    assert.ok((x2 - x1) * (b.y2 - b.y1) >= 0.08 - 1e-2);
  }
  assert.ok(flips > 150 && flips < 250, `${flips} flips of 400`);
  assert.notDeepEqual(randomCropBox(1, 0, 0, 224), randomCropBox(1, 1, 0, 224), 'another step, another crop');
});

test('crop-flip resamples the box; a flipped box comes out mirrored; same keys, same pixels', () => {
  const x = ramp();
  for (let s = 0; s < 12; s++) {
    const b = randomCropBox(4, 0, s, S);
    const out = augmentImages(x, 'crop-flip', 4, 0, [s, s + 100]);
    const row = firstRow(out);
    const [lo, hi] = [Math.min(b.x1, b.x2) * S, Math.max(b.x1, b.x2) * S - 1]; // first and last column in the box
    const ends = b.x1 <= b.x2 ? [lo, hi] : [hi, lo];
    assert.ok(Math.abs(row[0] - ends[0]) < 1e-5 && Math.abs(row[S - 1] - ends[1]) < 1e-5, `sample ${s}: box ${JSON.stringify(b)} gave ${row.join(' ')}`);
    assert.ok(bitwiseEqual(out.dataSync() as Float32Array, augmentImages(x, 'crop-flip', 4, 0, [s, s + 100]).dataSync() as Float32Array));
  }
  x.dispose();
});
