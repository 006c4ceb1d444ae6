/**
 * Bicubic resampling of a rectangle of an image, as Pillow's resize of a
 * crop computes it (the filter torchvision's RandomResizedCrop uses on PIL
 * images): a separable convolution, horizontal pass then vertical, with the
 * Keys cubic (a = −0.5) stretched by the downscale factor so that shrinking
 * averages instead of aliasing, taps clamped to the rectangle, and weights
 * normalised to sum 1. Values are floats (Pillow's "F" mode: float64
 * weights and sums, float32 between the passes), so an 8-bit image is not
 * rounded to levels after each pass.
 *
 * Plain arithmetic on numbers in a fixed order: the same bits on every
 * machine and worker.
 */
import { invalidArgument } from './errors.ts';

/** An image, row-major HWC, 3 channels: 8-bit levels (a decoded file) or floats in [0,1]. */
export interface PixelImage {
  readonly width: number;
  readonly height: number;
  readonly data: Uint8Array | Float32Array; // [height, width, 3]
}

/** A rectangle of whole source pixels. */
export interface PixelBox {
  readonly top: number;
  readonly left: number;
  readonly height: number;
  readonly width: number;
}

const SUPPORT = 2;

/** Keys' cubic convolution kernel with a = −0.5 (Catmull-Rom), as Pillow's. */
export function bicubicKernel(x: number): number {
  const a = -0.5;
  const t = Math.abs(x);
  if (t < 1) return ((a + 2) * t - (a + 3)) * t * t + 1;
  if (t < 2) return (((t - 5) * t + 8) * t - 4) * a;
  return 0;
}

/** Taps of one axis: for each output position, the first input index and its normalised weights. */
interface Taps {
  readonly first: Int32Array;
  readonly count: Int32Array;
  readonly weights: Float64Array; // [out, stride]
  readonly stride: number;
}

function taps(inSize: number, outSize: number): Taps {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = SUPPORT * filterScale;
  const stride = Math.ceil(support) * 2 + 1;
  const first = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const weights = new Float64Array(outSize * stride);
  for (let o = 0; o < outSize; o++) {
    const centre = (o + 0.5) * scale;
    // C's (int) truncation, then clamping to the input
    const lo = Math.max(Math.trunc(centre - support + 0.5), 0);
    const hi = Math.min(Math.trunc(centre + support + 0.5), inSize);
    let sum = 0;
    for (let i = lo; i < hi; i++) {
      const w = bicubicKernel((i - centre + 0.5) / filterScale);
      weights[o * stride + i - lo] = w;
      sum += w;
    }
    if (sum !== 0) for (let i = 0; i < hi - lo; i++) weights[o * stride + i] /= sum;
    first[o] = lo;
    count[o] = hi - lo;
  }
  return { first, count, weights, stride };
}

/**
 * Resamples `box` of `image` to outSize × outSize (mirrored left–right when
 * `flip`), writing [outSize, outSize, 3] floats into `out` at `offset`;
 * 8-bit levels are scaled by 1/255.
 */
export function resampleBox(image: PixelImage, box: PixelBox, outSize: number, flip: boolean, out: Float32Array, offset = 0): void {
  checkBox(image, box, outSize, out, offset);
  const unit = image.data instanceof Uint8Array ? 1 / 255 : 1;
  const { data, width: imageWidth } = image;
  // horizontal pass over the box's rows: [box.height, outSize, 3]
  const across = taps(box.width, outSize);
  const rows = new Float32Array(box.height * outSize * 3);
  for (let y = 0; y < box.height; y++) {
    const row = ((box.top + y) * imageWidth + box.left) * 3;
    for (let x = 0; x < outSize; x++) {
      const k = x * across.stride;
      const start = row + across.first[x] * 3;
      let r = 0;
      let g = 0;
      let b = 0;
      for (let i = 0; i < across.count[x]; i++) {
        const w = across.weights[k + i];
        const s = start + i * 3;
        r += data[s] * unit * w;
        g += data[s + 1] * unit * w;
        b += data[s + 2] * unit * w;
      }
      const o = (y * outSize + x) * 3;
      rows[o] = r;
      rows[o + 1] = g;
      rows[o + 2] = b;
    }
  }
  // vertical pass: [outSize, outSize, 3]
  const down = taps(box.height, outSize);
  for (let y = 0; y < outSize; y++) {
    const k = y * down.stride;
    for (let x = 0; x < outSize; x++) {
      let r = 0;
      let g = 0;
      let b = 0;
      for (let i = 0; i < down.count[y]; i++) {
        const w = down.weights[k + i];
        const s = ((down.first[y] + i) * outSize + x) * 3;
        r += rows[s] * w;
        g += rows[s + 1] * w;
        b += rows[s + 2] * w;
      }
      const o = offset + (y * outSize + (flip ? outSize - 1 - x : x)) * 3;
      out[o] = r;
      out[o + 1] = g;
      out[o + 2] = b;
    }
  }
}

function checkBox(image: PixelImage, box: PixelBox, outSize: number, out: Float32Array, offset: number): void {
  const { width, height, data } = image;
  if (data.length !== width * height * 3) throw invalidArgument(`image ${width}×${height} has ${data.length} values, expected ${width * height * 3}`);
  const whole = [box.top, box.left, box.height, box.width].every(Number.isInteger);
  if (!whole || box.top < 0 || box.left < 0 || box.height < 1 || box.width < 1 || box.top + box.height > height || box.left + box.width > width) {
    throw invalidArgument(`crop box ${JSON.stringify(box)} is not a non-empty rectangle of whole pixels inside the ${width}×${height} image`);
  }
  if (!Number.isInteger(outSize) || outSize < 1) throw invalidArgument(`output size must be a positive integer, got ${outSize}`);
  if (offset + outSize * outSize * 3 > out.length) throw invalidArgument(`output buffer of ${out.length} values is too small for ${outSize}×${outSize}×3 at ${offset}`);
}
