/** The tiny HF-layout CLIP fixtures and their golden outputs (scripts/fixtures/make_tiny_clip.py). */
import { readFile } from 'node:fs/promises';
import { ClipModel } from '../../../services/core/clip.ts';
import { preprocessImage } from '../../../services/io/images.ts';
import { loadClipModelDir, type ClipModelDir } from '../../../services/io/model-dir.ts';

export const FixtureNames = ['tiny-clip-f32', 'tiny-clip-f16', 'tiny-clip-eos2'] as const;
export type FixtureName = (typeof FixtureNames)[number];

export const fixtureDir = (name: FixtureName): string => new URL(`../../fixtures/${name}/`, import.meta.url).pathname;

export interface GoldenImage {
  readonly name: string;
  readonly png?: string;
  /** [3, H, W] flattened */
  readonly shape?: readonly number[];
  readonly pixels?: readonly number[];
}

export interface GoldenText {
  readonly name: string;
  readonly inputIds: readonly number[];
  readonly pooledIndex: number;
  readonly hasEndOfText: boolean;
}

export interface Golden {
  readonly weightsDtype: 'F32' | 'F16';
  readonly logitScale: number;
  readonly eosTokenId: number;
  readonly poolingRule: 'argmax' | 'first-eos';
  readonly images: readonly GoldenImage[];
  readonly texts: readonly GoldenText[];
  readonly imageEmbeds: readonly (readonly number[])[];
  readonly textEmbeds: readonly (readonly number[])[];
  /** [image][text] */
  readonly logitsPerImage: readonly (readonly number[])[];
}

export async function readGolden(name: FixtureName): Promise<Golden> {
  return JSON.parse(await readFile(`${fixtureDir(name)}golden.json`, 'utf8')) as Golden;
}

/** The golden images as one [n, S, S, 3] HWC buffer in [0,1]: PNGs decoded at model size, float inputs transposed. */
export async function goldenPixels(name: FixtureName, golden: Golden, size: number): Promise<Float32Array> {
  const per = size * size * 3;
  const out = new Float32Array(golden.images.length * per);
  for (const [n, image] of golden.images.entries()) {
    if (image.png) {
      const t = await preprocessImage(`${fixtureDir(name)}${image.png}`, { size, cropSize: size });
      out.set(t.data, n * per);
    } else {
      const [c, h, w] = image.shape!;
      for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let k = 0; k < c; k++) out[n * per + (y * w + x) * c + k] = image.pixels![(k * h + y) * w + x];
    }
  }
  return out;
}

/** A fixture loaded once per test process: its model directory, golden outputs and golden pixels. */
export interface Loaded {
  readonly dir: ClipModelDir;
  readonly golden: Golden;
  readonly pixels: Float32Array;
}

const loaded = new Map<FixtureName, Loaded>();
export async function fixture(name: FixtureName): Promise<Loaded> {
  if (!loaded.has(name)) {
    const dir = await loadClipModelDir(fixtureDir(name));
    const golden = await readGolden(name);
    loaded.set(name, { dir, golden, pixels: await goldenPixels(name, golden, dir.config.vision.imageSize) });
  }
  return loaded.get(name)!;
}

/** Runs `use` on a model built from the fixture's weights and disposes it after. */
export function withModel<T>(f: Loaded, explicitTranspose: boolean, use: (m: ClipModel) => T): T {
  const model = ClipModel.fromWeights(f.dir.config, f.dir.weights, { explicitTranspose });
  try {
    return use(model);
  } finally {
    model.dispose();
  }
}
