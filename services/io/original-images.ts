/**
 * The decoded original images of a training set, for augmentation that
 * crops the original (RandomResizedCrop) rather than the model-size centre
 * crop. Decoding a JPEG costs more than cropping it, and every round of a
 * step reads the same samples, so decoded images are kept in a cache bounded
 * in bytes; the least recently used go first. A file is decoded once even
 * when several rounds ask for it at the same time.
 */
import { invalidArgument } from '../core/errors.ts';
import type { OriginalsBatch, TrainingSource } from '../core/shard.ts';
import { mapBounded } from './bounded-map.ts';
import type { LabeledImage } from './dataset.ts';
import { decodeRgb, type RgbImage } from './images.ts';

/** 512 MiB: about 1,000 ImageNet-sized originals, several minibatches' worth. */
export const DEFAULT_IMAGE_CACHE_BYTES = 512 * 2 ** 20;

export class DecodedImageCache {
  private readonly images = new Map<string, RgbImage>(); // insertion order = recency
  private readonly pending = new Map<string, Promise<RgbImage>>();
  private held = 0;

  constructor(
    readonly maxBytes: number = DEFAULT_IMAGE_CACHE_BYTES,
    private readonly decode: (path: string) => Promise<RgbImage> = decodeRgb,
  ) {
    if (!Number.isFinite(maxBytes) || maxBytes < 0) throw invalidArgument(`image cache size must be ≥ 0 bytes, got ${maxBytes}`);
  }

  /** bytes of decoded pixels held */
  get bytes(): number {
    return this.held;
  }

  get size(): number {
    return this.images.size;
  }

  async get(path: string): Promise<RgbImage> {
    const cached = this.images.get(path);
    if (cached) {
      this.images.delete(path);
      this.images.set(path, cached);
      return cached;
    }
    const inFlight = this.pending.get(path);
    if (inFlight) return inFlight;
    const decoding = this.decode(path).then(
      (image) => {
        this.pending.delete(path);
        this.keep(path, image);
        return image;
      },
      (error: unknown) => {
        this.pending.delete(path);
        throw error;
      },
    );
    this.pending.set(path, decoding);
    return decoding;
  }

  private keep(path: string, image: RgbImage): void {
    const bytes = image.data.byteLength;
    if (bytes > this.maxBytes) return; // larger than the whole budget: used, not kept
    for (const [oldest, old] of this.images) {
      if (this.held + bytes <= this.maxBytes) break;
      this.images.delete(oldest);
      this.held -= old.data.byteLength;
    }
    this.images.set(path, image);
    this.held += bytes;
  }
}

/**
 * Decodes every image once, `concurrency` at a time, so that an unreadable
 * file fails the run before its first step (as packing the centre crops
 * did), not hours in; what fits the cache stays warm.
 */
export async function checkOriginals(images: readonly LabeledImage[], cache: DecodedImageCache, concurrency = 2): Promise<void> {
  await mapBounded(images, concurrency, (image) => cache.get(image.path));
}

/** A training source of originals: sample s is images[s], decoded through the cache, `concurrency` files at a time. */
export function originalsSource(images: readonly LabeledImage[], cache: DecodedImageCache, concurrency = 2): TrainingSource {
  return async (samples): Promise<OriginalsBatch> => {
    for (const s of samples) {
      if (!Number.isInteger(s) || s < 0 || s >= images.length) throw invalidArgument(`sample index ${s} is outside the training set (0..${images.length - 1})`);
    }
    const originals = await mapBounded(samples, concurrency, (s) => cache.get(images[s].path));
    return { originals, labels: samples.map((s) => images[s].label) };
  };
}
