import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { AdvclipError } from '../../../services/core/errors.ts';
import { hostTensor } from '../../../services/core/tensor.ts';
import {
  decodeRgb,
  encodePng,
  preprocessImage,
  preprocessImages,
  resizedSize,
  type RgbImage,
} from '../../../services/io/images.ts';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'advclip-images-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Deterministic pseudo-random bytes, so images have structure a wrong crop would show. */
function pattern(width: number, height: number, channels: number, salt = 0): Buffer {
  const data = Buffer.alloc(width * height * channels);
  for (let i = 0; i < data.length; i++) data[i] = (i * 37 + salt * 101 + ((i * i) >> 3)) & 0xff;
  return data;
}

async function writeRaw(name: string, data: Buffer, width: number, height: number, channels: 1 | 2 | 3 | 4) {
  const path = join(dir, name);
  const img = sharp(data, { raw: { width, height, channels } });
  await (name.endsWith('.jpg') ? img.jpeg({ quality: 95 }) : img.png()).toFile(path);
  return path;
}

const isError = (code: string, text: string) => (e: unknown) =>
  e instanceof AdvclipError && e.code === code && e.message.includes(text);

/** float32 of p/255, the value preprocessing must give for an unresampled pixel */
const scaled = (bytes: Uint8Array) => Float32Array.from(bytes, (p) => p / 255);

/** each grey byte three times, PIL's L → RGB */
const greyToRgb = (grey: Uint8Array) => Uint8Array.from({ length: grey.length * 3 }, (_, i) => grey[Math.floor(i / 3)]);

describe('decodeRgb', () => {
  test('replicates grey to three equal channels', async () => {
    const grey = pattern(5, 3, 1);
    const image = await decodeRgb(await writeRaw('grey.png', grey, 5, 3, 1));
    assert.equal(image.width, 5);
    assert.equal(image.height, 3);
    assert.deepEqual(image.data, greyToRgb(grey));
  });

  test('drops alpha without compositing (RGBA and grey+alpha)', async () => {
    const rgba = pattern(4, 4, 4);
    for (let i = 3; i < rgba.length; i += 8) rgba[i] = 0; // fully transparent pixels keep their colour
    const rgb = await decodeRgb(await writeRaw('rgba.png', rgba, 4, 4, 4));
    assert.deepEqual(rgb.data, Uint8Array.from(rgba.filter((_, i) => i % 4 !== 3)));

    const ga = pattern(3, 2, 2);
    const grey = await decodeRgb(await writeRaw('ga.png', ga, 3, 2, 2));
    assert.deepEqual(grey.data, greyToRgb(ga.filter((_, i) => i % 2 === 0)));
  });

  test('decodes JPEG to RGB of the right size and colour', async () => {
    const flat = Buffer.alloc(16 * 8 * 3);
    for (let i = 0; i < flat.length; i += 3) flat.set([200, 40, 90], i);
    const image = await decodeRgb(await writeRaw('flat.jpg', flat, 16, 8, 3));
    assert.equal(image.width, 16);
    assert.equal(image.height, 8);
    assert.equal(image.data.length, 16 * 8 * 3);
    const target = [200, 40, 90];
    for (let i = 0; i < image.data.length; i++) assert.ok(Math.abs(image.data[i] - target[i % 3]) <= 4, `byte ${i}`);
  });

  test('a file that is not an image or is truncated (a PNG, a JPEG cut in its scan) is DATA_LOSS naming the path; a missing file NOT_FOUND', async () => {
    const bad = join(dir, 'broken.png');
    await writeFile(bad, 'this is not a png');
    await assert.rejects(decodeRgb(bad), isError('DATA_LOSS', bad));
    const good = await writeRaw('cut.png', pattern(32, 32, 3), 32, 32, 3);
    const cut = join(dir, 'truncated.png');
    await writeFile(cut, readFileSync(good).subarray(0, 60));
    await assert.rejects(decodeRgb(cut), isError('DATA_LOSS', cut));
    // a JPEG cut inside its scan data: libjpeg only warns and fills in grey, so this needs failOn 'truncated'
    const jpeg = await writeRaw('cut.jpg', pattern(64, 64, 3), 64, 64, 3);
    const cutJpeg = join(dir, 'truncated.jpg');
    const jpegBytes = readFileSync(jpeg);
    await writeFile(cutJpeg, jpegBytes.subarray(0, Math.floor(jpegBytes.length * 0.8)));
    await assert.rejects(decodeRgb(cutJpeg), isError('DATA_LOSS', cutJpeg));
    await assert.rejects(decodeRgb(join(dir, 'nope.png')), isError('NOT_FOUND', 'nope.png'));
  });
});

describe('resizedSize', () => {
  test('shortest side becomes size, long side truncated like HF int(size * long / short)', () => {
    assert.deepEqual(resizedSize(640, 480, 224), { width: 298, height: 224 }); // 298.67 → 298
    assert.deepEqual(resizedSize(480, 640, 224), { width: 224, height: 298 });
    assert.deepEqual(resizedSize(333, 500, 224), { width: 224, height: 336 }); // 336.34 → 336
    assert.deepEqual(resizedSize(300, 300, 224), { width: 224, height: 224 });
    assert.deepEqual(resizedSize(7, 4, 4), { width: 7, height: 4 });
  });
});

describe('preprocessImage', () => {
  test('an image already cropSize x cropSize with size == cropSize is not resampled: exactly pixels/255', async () => {
    const pixels = pattern(8, 8, 3, 5);
    const path = await writeRaw('exact.png', pixels, 8, 8, 3);
    const tensor = await preprocessImage(path, { size: 8, cropSize: 8, resample: 'bicubic' });
    assert.deepEqual(tensor.shape, [8, 8, 3]);
    assert.deepEqual(tensor.data, scaled(pixels));
  });

  test('odd crop margins use floor((side - crop) / 2), as HF does (torchvision would round up)', async () => {
    // 7x4 with size 4 needs no resize, so the crop window shows in exact pixels
    const wide = pattern(7, 4, 3, 1);
    const fromWide = await preprocessImage({ width: 7, height: 4, data: wide }, { size: 4, cropSize: 4 });
    const expectedWide = new Uint8Array(4 * 4 * 3);
    for (let y = 0; y < 4; y++) expectedWide.set(wide.subarray((y * 7 + 1) * 3, (y * 7 + 5) * 3), y * 12);
    assert.deepEqual(fromWide.data, scaled(expectedWide));

    const tall = pattern(4, 7, 3, 2);
    const fromTall = await preprocessImage({ width: 4, height: 7, data: tall }, { size: 4, cropSize: 4 });
    assert.deepEqual(fromTall.data, scaled(tall.subarray(4 * 3, 5 * 4 * 3)));
  });

  test('non-square: bicubic resize of the shortest side, then the centre window', async () => {
    const pixels = pattern(40, 20, 3, 3);
    const path = await writeRaw('wide.png', pixels, 40, 20, 3);
    const tensor = await preprocessImage(path, { size: 10, cropSize: 8 });
    assert.deepEqual(tensor.shape, [8, 8, 3]);
    // independent pipeline: resize to 20x10 with the cubic kernel, then extract the window at (6, 1)
    const reference = await sharp(pixels, { raw: { width: 40, height: 20, channels: 3 } })
      .resize(20, 10, { kernel: 'cubic', fit: 'fill' })
      .raw()
      .toBuffer()
      .then((b) => sharp(b, { raw: { width: 20, height: 10, channels: 3 } }).extract({ left: 6, top: 1, width: 8, height: 8 }).raw().toBuffer());
    assert.deepEqual(tensor.data, scaled(reference));
    // and it is not nearest-neighbour: a bicubic blend creates values the source does not have at those spots
    const nearest = await sharp(pixels, { raw: { width: 40, height: 20, channels: 3 } })
      .resize(20, 10, { kernel: 'nearest', fit: 'fill' })
      .extract({ left: 6, top: 1, width: 8, height: 8 })
      .raw()
      .toBuffer();
    assert.notDeepEqual(tensor.data, scaled(nearest));
  });

  test('values are in [0,1] and the output is HWC float32', async () => {
    const path = await writeRaw('range.jpg', pattern(30, 50, 3), 30, 50, 3);
    const tensor = await preprocessImage(path, { size: 12, cropSize: 12 });
    assert.ok(tensor.data instanceof Float32Array);
    assert.deepEqual(tensor.shape, [12, 12, 3]);
    assert.ok(tensor.data.every((v) => v >= 0 && v <= 1));
  });

  test('a crop larger than the resized image pads with zeros around the centre (HF)', async () => {
    const pixels = pattern(3, 3, 3, 4);
    const tensor = await preprocessImage({ width: 3, height: 3, data: pixels }, { size: 3, cropSize: 6 });
    // offset floor((3 - 6) / 2) = -2: the image sits at rows/cols 2..4
    for (let y = 0; y < 6; y++) {
      for (let x = 0; x < 6; x++) {
        const inside = y >= 2 && y < 5 && x >= 2 && x < 5;
        for (let c = 0; c < 3; c++) {
          const got = tensor.data[(y * 6 + x) * 3 + c];
          const want = inside ? Math.fround(pixels[((y - 2) * 3 + (x - 2)) * 3 + c] / 255) : 0;
          assert.equal(got, want, `(${y},${x},${c})`);
        }
      }
    }
  });

  test('bad options and bad raw images are INVALID_ARGUMENT', async () => {
    const image: RgbImage = { width: 2, height: 2, data: new Uint8Array(12) };
    await assert.rejects(preprocessImage(image, { size: 0, cropSize: 2 }), isError('INVALID_ARGUMENT', 'size'));
    await assert.rejects(preprocessImage(image, { size: 2, cropSize: 2.5 }), isError('INVALID_ARGUMENT', 'cropSize'));
    await assert.rejects(
      preprocessImage({ width: 2, height: 2, data: new Uint8Array(11) }, { size: 2, cropSize: 2 }),
      isError('INVALID_ARGUMENT', '11 bytes'),
    );
  });
});

describe('encodePng', () => {
  test('a [H,W,3] tensor of k/255 values round-trips exactly; out-of-range values clamp', async () => {
    const bytes = pattern(5, 4, 3, 9);
    const values = scaled(bytes);
    values[0] = -0.5;
    values[1] = 1.7;
    const path = join(dir, 'nested', 'tensor.png');
    await encodePng(hostTensor([4, 5, 3], values), path);
    const back = await decodeRgb(path);
    const expected = Uint8Array.from(bytes);
    expected[0] = 0;
    expected[1] = 255;
    assert.deepEqual(back, { width: 5, height: 4, data: expected });
  });

  test('writes 8-bit RGB as given and rejects a tensor that is not [H,W,3]', async () => {
    const data = Uint8Array.from(pattern(3, 2, 3));
    const path = join(dir, 'rgb.png');
    await encodePng({ width: 3, height: 2, data }, path);
    assert.deepEqual((await decodeRgb(path)).data, data);
    await assert.rejects(encodePng(hostTensor([2, 2], new Float32Array(4)), join(dir, 'x.png')), isError('INVALID_ARGUMENT', 'x.png'));
  });
});

describe('preprocessImages', () => {
  test('packs [N,H,W,3] in path order, each equal to preprocessImage of its file', async () => {
    const paths = await Promise.all(
      [0, 1, 2, 3, 4].map((i) => writeRaw(`batch${i}.png`, pattern(9 + i, 12, 3, i), 9 + i, 12, 3)),
    );
    const options = { size: 6, cropSize: 5 };
    const batch = await preprocessImages(paths, options, { concurrency: 2 });
    assert.deepEqual(batch.shape, [5, 5, 5, 3]);
    for (const [i, path] of paths.entries()) {
      const one = await preprocessImage(path, options);
      assert.deepEqual(batch.data.subarray(i * 75, (i + 1) * 75), one.data, `image ${i}`);
    }
    const empty = await preprocessImages([], options);
    assert.deepEqual(empty.shape, [0, 5, 5, 3]);
  });

  test('a bad file in the batch fails the batch with its path', async () => {
    const good = await writeRaw('ok.png', pattern(4, 4, 3), 4, 4, 3);
    const bad = join(dir, 'bad-in-batch.jpg');
    await writeFile(bad, Buffer.from([0xff, 0xd8, 0xff, 0x00]));
    await assert.rejects(preprocessImages([good, bad, good], { size: 4, cropSize: 4 }), isError('DATA_LOSS', bad));
    await assert.rejects(preprocessImages([good], { size: 4, cropSize: 4 }, { concurrency: 0 }), isError('INVALID_ARGUMENT', 'concurrency'));
  });
});
