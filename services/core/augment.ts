/**
 * Training augmentation as CLIP-LoRA's: RandomResizedCrop(size, scale
 * 0.08–1, ratio 3/4–4/3, bicubic) on the decoded original image, then a
 * horizontal flip with probability ½. Every draw comes from (seed, step,
 * sample index) — never the round — so the ascent and descent rounds of a
 * step see the same crop, on whichever worker computes the sample. The
 * result is in [0,1]; CLIP's normalisation is the model's first layer.
 */
import { Purpose, RandomStream } from './rng.ts';
import { resampleBox, type PixelBox, type PixelImage } from './resample.ts';

export type Augment = 'crop-flip' | 'none';

export const CROP_SCALE = [0.08, 1] as const;
export const CROP_RATIO = [3 / 4, 4 / 3] as const;

export interface CropParams extends PixelBox {
  readonly flip: boolean;
}

/** Python's round(): halves go to the even neighbour. */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * torchvision's RandomResizedCrop.get_params on a width × height image: up
 * to 10 draws of an area fraction in CROP_SCALE and a log-uniform aspect
 * ratio in CROP_RATIO; when none fits, the centre crop with the ratio
 * clamped to CROP_RATIO. Then the flip.
 */
export function randomResizedCrop(seed: number, step: number, sample: number, width: number, height: number): CropParams {
  const rng = RandomStream.of(Purpose.augment, seed, step, sample);
  const area = width * height;
  const [logLo, logHi] = [Math.log(CROP_RATIO[0]), Math.log(CROP_RATIO[1])];
  let box: PixelBox | null = null;
  for (let attempt = 0; attempt < 10 && box === null; attempt++) {
    const target = area * (CROP_SCALE[0] + rng.uniform() * (CROP_SCALE[1] - CROP_SCALE[0]));
    const ratio = Math.exp(logLo + rng.uniform() * (logHi - logLo));
    const w = roundHalfEven(Math.sqrt(target * ratio));
    const h = roundHalfEven(Math.sqrt(target / ratio));
    if (w > 0 && h > 0 && w <= width && h <= height) {
      box = { top: rng.below(height - h + 1), left: rng.below(width - w + 1), height: h, width: w };
    }
  }
  box ??= centreFallback(width, height);
  return { ...box, flip: rng.uniform() < 0.5 };
}

function centreFallback(width: number, height: number): PixelBox {
  const ratio = width / height;
  let [w, h] = [width, height];
  if (ratio < CROP_RATIO[0]) h = roundHalfEven(w / CROP_RATIO[0]);
  else if (ratio > CROP_RATIO[1]) w = roundHalfEven(h * CROP_RATIO[1]);
  return { top: Math.trunc((height - h) / 2), left: Math.trunc((width - w) / 2), height: h, width: w };
}

/**
 * The augmented training images of some samples → [n, size, size, 3],
 * clamped to [0,1]: sample `samples[i]` is cropped from `images[i]` (its decoded
 * original, or model-size pixels where no original is at hand).
 */
export function augmentImages(images: readonly PixelImage[], seed: number, step: number, samples: readonly number[], size: number): Float32Array {
  const per = size * size * 3;
  const out = new Float32Array(samples.length * per);
  samples.forEach((sample, i) => {
    const image = images[i];
    const crop = randomResizedCrop(seed, step, sample, image.width, image.height);
    resampleBox(image, crop, size, crop.flip, out, i * per);
  });
  // the cubic's negative lobes overshoot at edges; images live in [0,1] (and Pillow's 8-bit output is clipped too)
  for (let j = 0; j < out.length; j++) out[j] = Math.min(1, Math.max(0, out[j]));
  return out;
}
