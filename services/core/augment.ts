/**
 * Training augmentation as CLIP-LoRA's: RandomResizedCrop(scale 0.08–1,
 * ratio 3/4–4/3) then a horizontal flip with probability ½, drawn per sample
 * from (seed, step, sample index). One crop-and-resize call does both: a box
 * given right-to-left comes out mirrored. Resampling is bilinear (tfjs has no
 * bicubic crop-and-resize).
 */
import * as tf from '@tensorflow/tfjs';
import { Purpose, RandomStream } from './rng.ts';

export type Augment = 'crop-flip' | 'none';

export interface CropBox {
  readonly y1: number;
  readonly x1: number;
  readonly y2: number;
  readonly x2: number;
}

/** torchvision's RandomResizedCrop.get_params in normalised coordinates, plus a flip. */
export function randomCropBox(seed: number, step: number, sample: number, size: number): CropBox {
  const rng = RandomStream.of(Purpose.augment, seed, step, sample);
  const area = size * size;
  let box: CropBox = { y1: 0, x1: 0, y2: 1, x2: 1 };
  for (let attempt = 0; attempt < 10; attempt++) {
    const target = area * (0.08 + rng.uniform() * (1 - 0.08));
    const logRatio = Math.log(3 / 4) + rng.uniform() * (Math.log(4 / 3) - Math.log(3 / 4));
    const ratio = Math.exp(logRatio);
    const w = Math.round(Math.sqrt(target * ratio));
    const h = Math.round(Math.sqrt(target / ratio));
    if (w > 0 && h > 0 && w <= size && h <= size) {
      const top = rng.below(size - h + 1);
      const left = rng.below(size - w + 1);
      box = { y1: top / size, x1: left / size, y2: (top + h) / size, x2: (left + w) / size };
      break;
    }
  }
  const flip = rng.uniform() < 0.5;
  return flip ? { ...box, x1: box.x2, x2: box.x1 } : box;
}

/** images [n, S, S, 3] → augmented [n, S, S, 3]; identity for 'none'. */
export function augmentImages(images: tf.Tensor4D, mode: Augment, seed: number, step: number, samples: readonly number[]): tf.Tensor4D {
  if (mode === 'none') return images;
  const size = images.shape[1];
  // pixel-centre convention of crop_and_resize: a box edge at (size-1)/size covers the last pixel
  const scale = size / (size - 1);
  const boxes = samples.map((s) => {
    const b = randomCropBox(seed, step, s, size);
    const edge = (v: number, lo: boolean) => Math.min(1, Math.max(0, (lo ? v : v - 1 / size) * scale));
    const [x1, x2] = b.x1 <= b.x2 ? [edge(b.x1, true), edge(b.x2, false)] : [edge(b.x1, false), edge(b.x2, true)];
    return [edge(b.y1, true), x1, edge(b.y2, false), x2];
  });
  return tf.image.cropAndResize(images, boxes, samples.map((_, i) => i), [size, size], 'bilinear');
}
