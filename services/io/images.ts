/**
 * Image files in and out, and CLIP's evaluation preprocessing up to (not
 * including) normalisation: resize the shortest side (bicubic), centre crop,
 * scale to [0,1]. Normalisation is the model's first layer, because attacks
 * work in [0,1] pixel space.
 *
 * The geometry follows Hugging Face's CLIPImageProcessor so the same file
 * gives the same crop window as in Python: the long side is
 * int(size * long / short), crop offsets are floor((side - crop) / 2), a
 * crop larger than the image pads with zeros, and an image already at the
 * target size is not resampled. The bicubic kernel is libvips' (sharp
 * 'cubic', Catmull-Rom like PIL's a = -0.5), so pixel values may differ
 * from PIL by a few levels, but never the window.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import sharp from 'sharp';
import { AdvclipError, dataLoss, invalidArgument, notFound } from '../core/errors.ts';
import { hostTensor, type HostTensor } from '../core/tensor.ts';
import { mapBounded } from './bounded-map.ts';

/** An 8-bit RGB image, row-major HWC. */
export interface RgbImage {
  readonly width: number;
  readonly height: number;
  readonly data: Uint8Array; // [height, width, 3]
}

export interface PreprocessOptions {
  /** length of the shortest side after resizing (CLIP: 224) */
  readonly size: number;
  /** side of the square centre crop (CLIP: 224) */
  readonly cropSize: number;
  readonly resample?: 'bicubic';
}

/**
 * Reads an image file as 8-bit RGB the way PIL's convert("RGB") does: grey is
 * replicated to three channels, alpha is dropped (not composited), embedded
 * ICC profiles are ignored and EXIF orientation is not applied.
 */
export async function decodeRgb(path: string): Promise<RgbImage> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (error) {
    throw fileError(path, error);
  }
  try {
    // failOn 'truncated': PIL refuses truncated files but loads files with
    // recoverable libjpeg warnings (common in ImageNet), so do the same.
    const { data, info } = await sharp(bytes, { ignoreIcc: true, failOn: 'truncated' })
      .removeAlpha()
      .toColourspace('srgb')
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) {
      throw new AdvclipError('INTERNAL', `${path}: decoder gave ${info.channels} channels, expected 3`);
    }
    return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.length) };
  } catch (error) {
    if (error instanceof AdvclipError) throw error;
    throw new AdvclipError('DATA_LOSS', `${path}: not a decodable image (${messageOf(error)})`, { cause: error });
  }
}

/** Size after resizing the shortest side to `size`, with HF's truncation of the long side. */
export function resizedSize(width: number, height: number, size: number): { width: number; height: number } {
  if (width <= height) return { width: size, height: Math.trunc((size * height) / width) };
  return { width: Math.trunc((size * width) / height), height: size };
}

/**
 * Resize (shortest side) + centre crop + /255 → [cropSize, cropSize, 3]
 * float32 in [0,1], HWC.
 */
export async function preprocessImage(source: string | RgbImage, options: PreprocessOptions): Promise<HostTensor> {
  checkOptions(options);
  const image = typeof source === 'string' ? await decodeRgb(source) : checkImage(source);
  const out = new Float32Array(options.cropSize * options.cropSize * 3);
  cropInto(await resize(image, options.size), options.cropSize, out);
  return hostTensor([options.cropSize, options.cropSize, 3], out);
}

/**
 * Preprocesses many files into one packed [N, cropSize, cropSize, 3] tensor,
 * decoding at most `concurrency` (default 2, one per core) at a time.
 */
export async function preprocessImages(
  paths: readonly string[],
  options: PreprocessOptions,
  { concurrency = 2 }: { concurrency?: number } = {},
): Promise<HostTensor> {
  checkOptions(options);
  const side = options.cropSize;
  const perImage = side * side * 3;
  const out = new Float32Array(paths.length * perImage);
  await mapBounded(paths, concurrency, async (path, i) => {
    const resized = await resize(await decodeRgb(path), options.size);
    cropInto(resized, side, out.subarray(i * perImage, (i + 1) * perImage));
  });
  return hostTensor([paths.length, side, side, 3], out);
}

/**
 * Writes a PNG from 8-bit RGB or from a [H, W, 3] tensor in [0,1] (values
 * are clamped, then rounded to the nearest level, so pixels/255 round-trips
 * exactly). Creates the parent directory.
 */
export async function encodePng(image: RgbImage | HostTensor, path: string): Promise<void> {
  const rgb = 'shape' in image ? toRgb(image, path) : checkImage(image);
  await mkdir(dirname(path), { recursive: true });
  await sharp(rgb.data, { raw: { width: rgb.width, height: rgb.height, channels: 3 } })
    .png()
    .toFile(path);
}

async function resize(image: RgbImage, size: number): Promise<RgbImage> {
  const target = resizedSize(image.width, image.height, size);
  // An image already at the target size keeps its exact pixels (HF/PIL skip
  // resampling too); a cubic pass at scale 1 would still blur slightly.
  if (target.width === image.width && target.height === image.height) return image;
  const data = await sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } })
    .resize(target.width, target.height, { kernel: 'cubic', fit: 'fill' })
    .raw()
    .toBuffer();
  return { ...target, data: new Uint8Array(data.buffer, data.byteOffset, data.length) };
}

/**
 * Centre crop with HF's offsets floor((side - crop) / 2); where the crop is
 * larger than the image the offset is negative and the outside stays 0,
 * which is exactly HF's zero padding followed by cropping.
 */
function cropInto(image: RgbImage, crop: number, out: Float32Array): void {
  const top = Math.floor((image.height - crop) / 2);
  const left = Math.floor((image.width - crop) / 2);
  out.fill(0);
  for (let y = 0; y < crop; y++) {
    const sy = y + top;
    if (sy < 0 || sy >= image.height) continue;
    for (let x = 0; x < crop; x++) {
      const sx = x + left;
      if (sx < 0 || sx >= image.width) continue;
      const s = (sy * image.width + sx) * 3;
      const o = (y * crop + x) * 3;
      // x * (1/255) in float64 then float32, as HF's rescale computes it
      out[o] = image.data[s] * (1 / 255);
      out[o + 1] = image.data[s + 1] * (1 / 255);
      out[o + 2] = image.data[s + 2] * (1 / 255);
    }
  }
}

function toRgb(tensor: HostTensor, path: string): RgbImage {
  const [height, width, channels] = tensor.shape;
  if (tensor.shape.length !== 3 || channels !== 3) {
    throw invalidArgument(`${path}: image tensor has shape [${tensor.shape.join(',')}], expected [H,W,3]`);
  }
  const data = new Uint8Array(tensor.data.length);
  for (let i = 0; i < data.length; i++) {
    const v = tensor.data[i];
    // NaN maps to 0 rather than poisoning the file with an arbitrary level
    data[i] = Number.isNaN(v) ? 0 : Math.round(Math.min(1, Math.max(0, v)) * 255);
  }
  return { width, height, data };
}

function checkImage(image: RgbImage): RgbImage {
  const { width, height, data } = image;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw invalidArgument(`RGB image has size ${width}x${height}, expected positive integers`);
  }
  if (data.length !== width * height * 3) {
    throw invalidArgument(`RGB image ${width}x${height} has ${data.length} bytes, expected ${width * height * 3}`);
  }
  return image;
}

function checkOptions({ size, cropSize, resample = 'bicubic' }: PreprocessOptions): void {
  for (const [name, value] of [['size', size], ['cropSize', cropSize]] as const) {
    if (!Number.isInteger(value) || value < 1) {
      throw invalidArgument(`preprocess ${name} must be a positive integer, got ${value}`);
    }
  }
  if (resample !== 'bicubic') throw invalidArgument(`preprocess resample must be 'bicubic', got '${resample}'`);
}

function fileError(path: string, error: unknown): AdvclipError {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return notFound(`${path}: image file does not exist`);
  if (code === 'EISDIR') return invalidArgument(`${path}: is a directory, expected an image file`);
  return dataLoss(`${path}: cannot read image file (${messageOf(error)})`);
}

const messageOf = (error: unknown): string => (error instanceof Error ? error.message : String(error));
