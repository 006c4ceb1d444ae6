import { test } from 'node:test';
import assert from 'node:assert/strict';
import { augmentImages, CROP_RATIO, CROP_SCALE, randomResizedCrop } from '../../../services/core/augment.ts';
import { bicubicKernel, resampleBox, type PixelBox, type PixelImage } from '../../../services/core/resample.ts';
import { RandomStream } from '../../../services/core/rng.ts';
import { bitwiseEqual, maxAbsDiff } from './numeric.ts';

/** a random 8-bit RGB image */
function noiseImage(width: number, height: number, seed = 3): PixelImage {
  const rng = RandomStream.of(seed, width, height);
  return { width, height, data: Uint8Array.from({ length: width * height * 3 }, () => rng.below(256)) };
}

/**
 * An independent bicubic reference: every output value straight from the
 * definition as one 2-D sum in float64 (no separable passes, no float32
 * intermediate), the kernel stretched by the downscale factor and its
 * weights over the taps inside the box normalised to 1 per axis.
 */
function referenceResample(image: PixelImage, box: PixelBox, size: number): Float64Array {
  const unit = image.data instanceof Uint8Array ? 1 / 255 : 1;
  const axis = (inSize: number, o: number) => {
    const scale = inSize / size;
    const stretch = Math.max(1, scale);
    const centre = (o + 0.5) * scale;
    const w = Array.from({ length: inSize }, (_, i) => (Math.abs(i + 0.5 - centre) < 2 * stretch ? bicubicKernel((i + 0.5 - centre) / stretch) : 0));
    const total = w.reduce((s, v) => s + v, 0);
    return w.map((v) => v / total);
  };
  const out = new Float64Array(size * size * 3);
  for (let y = 0; y < size; y++) {
    const wy = axis(box.height, y);
    for (let x = 0; x < size; x++) {
      const wx = axis(box.width, x);
      for (let c = 0; c < 3; c++) {
        let v = 0;
        for (let i = 0; i < box.height; i++) {
          for (let j = 0; j < box.width; j++) v += wy[i] * wx[j] * image.data[((box.top + i) * image.width + box.left + j) * 3 + c] * unit;
        }
        out[(y * size + x) * 3 + c] = v;
      }
    }
  }
  return out;
}

const resampled = (image: PixelImage, box: PixelBox, size: number, flip = false) => {
  const out = new Float32Array(size * size * 3);
  resampleBox(image, box, size, flip, out);
  return out;
};

test('the bicubic kernel is Keys a = −0.5: interpolating, partition of unity, zero beyond 2', () => {
  assert.equal(bicubicKernel(0), 1);
  for (const k of [1, 2, 3, -1, -2]) assert.ok(bicubicKernel(k) === 0, `K(${k}) = ${bicubicKernel(k)}`);
  for (const t of [0.1, 0.25, 0.5, 0.9]) {
    const sum = [-1, 0, 1, 2].reduce((s, k) => s + bicubicKernel(t - k), 0);
    assert.ok(Math.abs(sum - 1) < 1e-12, `Σ_k K(${t} − k) = ${sum}`);
  }
  assert.equal(bicubicKernel(0.5), 0.5625);
});

test('bicubic: known values — a 4-pixel row shrunk to 2 is 71/121 and 292/121 (hand-computed, Pillow’s weights)', () => {
  // the first output's centre is at 1 (in 4-pixel units), the kernel is stretched ×2: taps at
  // −0.25, 0.25, 0.75, 1.25 have weights 111/128, 111/128, 29/128, −9/128, summing to 121/64
  const row: PixelImage = { width: 4, height: 1, data: Uint8Array.from([0, 1, 2, 3].flatMap((v) => [v, 2 * v, 3 * v])) };
  const out = resampled(row, { top: 0, left: 0, height: 1, width: 4 }, 2);
  const expect = [71 / 121, 292 / 121];
  for (let y = 0; y < 2; y++) {
    for (let x = 0; x < 2; x++) {
      for (let c = 0; c < 3; c++) assert.ok(Math.abs(out[(y * 2 + x) * 3 + c] - (expect[x] * (c + 1)) / 255) < 1e-7, `(${y},${x},${c}) = ${out[(y * 2 + x) * 3 + c] * 255}`);
    }
  }
});

test('bicubic: the whole image at its own size is the image; a constant stays constant; a ramp stays a ramp inside', () => {
  const image = noiseImage(9, 9);
  const same = resampled(image, { top: 0, left: 0, height: 9, width: 9 }, 9);
  assert.ok(same.every((v, i) => v === Math.fround(image.data[i] * (1 / 255))), 'identity');
  const flat: PixelImage = { width: 7, height: 5, data: new Uint8Array(7 * 5 * 3).fill(200) };
  for (const size of [3, 11]) assert.ok(maxAbsDiff(resampled(flat, { top: 0, left: 1, height: 5, width: 6 }, size), new Float32Array(size * size * 3).fill(200 / 255)) < 1e-6);
  // upsampling a linear ramp ×2: away from the edges, cubic convolution reproduces it exactly
  const ramp: PixelImage = { width: 8, height: 8, data: Float32Array.from({ length: 8 * 8 * 3 }, (_, i) => Math.floor(i / 3) % 8) };
  const up = resampled(ramp, { top: 0, left: 0, height: 8, width: 8 }, 16);
  for (let x = 4; x < 12; x++) assert.ok(Math.abs(up[(8 * 16 + x) * 3] - ((x + 0.5) / 2 - 0.5)) < 1e-6, `column ${x}: ${up[(8 * 16 + x) * 3]}`);
});

test('bicubic matches an independent float64 2-D reference, shrinking and enlarging, on rectangles of an image', () => {
  const image = noiseImage(23, 17);
  const cases: [PixelBox, number][] = [
    [{ top: 0, left: 0, height: 17, width: 23 }, 8],
    [{ top: 3, left: 5, height: 9, width: 14 }, 6],
    [{ top: 2, left: 1, height: 5, width: 4 }, 12],
    [{ top: 0, left: 10, height: 17, width: 3 }, 7],
  ];
  for (const [box, size] of cases) {
    const diff = maxAbsDiff(resampled(image, box, size), referenceResample(image, box, size));
    assert.ok(diff < 2e-6, `${JSON.stringify(box)} → ${size}: max |Δ| ${diff}`);
  }
});

test('bicubic: a flip mirrors the output exactly; the same input gives the same bits', () => {
  const image = noiseImage(20, 15);
  const box = { top: 1, left: 2, height: 12, width: 16 };
  const plain = resampled(image, box, 8);
  const flipped = resampled(image, box, 8, true);
  for (let y = 0; y < 8; y++) {
    for (let x = 0; x < 8; x++) for (let c = 0; c < 3; c++) assert.equal(flipped[(y * 8 + x) * 3 + c], plain[(y * 8 + 7 - x) * 3 + c]);
  }
  assert.ok(bitwiseEqual(plain, resampled(image, box, 8)));
  assert.throws(() => resampled(image, { top: 10, left: 0, height: 6, width: 4 }, 8), /inside the 20×15 image/);
});

test('RandomResizedCrop: keyed by (seed, step, sample), inside the image, area in 8–100 %, ratio in 3/4–4/3, flips about half the time', () => {
  for (const [width, height] of [[224, 224], [500, 375], [64, 64], [300, 600]]) {
    assert.deepEqual(randomResizedCrop(1, 2, 3, width, height), randomResizedCrop(1, 2, 3, width, height));
    let flips = 0;
    const areas: number[] = [];
    for (let s = 0; s < 400; s++) {
      const c = randomResizedCrop(1, 0, s, width, height);
      if (c.flip) flips++;
      assert.ok(Number.isInteger(c.top) && Number.isInteger(c.left) && c.top >= 0 && c.left >= 0 && c.top + c.height <= height && c.left + c.width <= width, JSON.stringify(c));
      // w and h are rounded to whole pixels, so area and ratio hold up to half a pixel on each side
      const area = c.width * c.height;
      areas.push(area / (width * height));
      assert.ok((c.width + 0.5) * (c.height + 0.5) >= CROP_SCALE[0] * width * height, `area ${area}`);
      assert.ok((c.width + 0.5) / Math.max(c.height - 0.5, 1) >= CROP_RATIO[0] && (c.width - 0.5) / (c.height + 0.5) <= CROP_RATIO[1], `ratio ${c.width}/${c.height}`);
    }
    assert.ok(flips > 150 && flips < 250, `${flips} flips of 400`);
    // (a tall or wide image cannot hold a large crop of ratio 3/4–4/3: those draws are redrawn)
    if (width === height) assert.ok(Math.min(...areas) < 0.2 && Math.max(...areas) > 0.8, `areas span the range: ${Math.min(...areas)}..${Math.max(...areas)}`);
  }
  assert.notDeepEqual(randomResizedCrop(1, 0, 0, 224, 224), randomResizedCrop(1, 1, 0, 224, 224), 'another step, another crop');
  assert.notDeepEqual(randomResizedCrop(1, 0, 0, 224, 224), randomResizedCrop(2, 0, 0, 224, 224), 'another seed, another crop');
});

test('RandomResizedCrop: an image no crop of ratio 3/4–4/3 fits falls back to the centre crop with the ratio clamped', () => {
  assert.deepEqual({ ...randomResizedCrop(1, 0, 0, 1000, 10), flip: false }, { top: 0, left: 493, height: 10, width: 13, flip: false });
  assert.deepEqual({ ...randomResizedCrop(1, 0, 0, 10, 1000), flip: false }, { top: 493, left: 0, height: 13, width: 10, flip: false });
});

test('augmentImages crops each sample from its own original with its own (seed, step, sample) draw', () => {
  const images = [noiseImage(40, 30, 1), noiseImage(25, 50, 2)];
  const out = augmentImages(images, 7, 3, [11, 4], 16);
  assert.equal(out.length, 2 * 16 * 16 * 3);
  images.forEach((image, i) => {
    const crop = randomResizedCrop(7, 3, [11, 4][i], image.width, image.height);
    const clamped = resampled(image, crop, 16, crop.flip).map((v) => Math.min(1, Math.max(0, v)));
    assert.ok(bitwiseEqual(out.subarray(i * 768, (i + 1) * 768), clamped));
  });
  assert.ok(bitwiseEqual(out, augmentImages(images, 7, 3, [11, 4], 16)), 'a pure function of its inputs');
  assert.ok(out.every((v) => v >= 0 && v <= 1), 'in [0,1], though the cubic overshoots on noise');
  assert.ok(resampled(images[0], { top: 0, left: 0, height: 5, width: 5 }, 16).some((v) => v < 0 || v > 1), 'it does overshoot');
});
