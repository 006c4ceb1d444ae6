/**
 * Fingerprints that let a coordinator and a worker check they train the
 * same thing before any tensor moves: the model (config.json and every
 * weights file, byte for byte) and the K-shot training set (image paths
 * relative to the data root, and labels, in order).
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { access, readFile } from 'node:fs/promises';
import { basename, join, relative } from 'node:path';
import type { LabeledImage } from './dataset.ts';
import { CONFIG_FILE, resolveModelDir, WEIGHTS_FILE, WEIGHTS_INDEX_FILE, type ClipModelFiles } from './model-dir.ts';

/** SHA-256 (hex) of config.json followed by the weights files in name order. */
export async function modelSha256(files: Pick<ClipModelFiles, 'config' | 'weights'>): Promise<string> {
  const hash = createHash('sha256');
  const weights = [...files.weights].sort((a, b) => basename(a).localeCompare(basename(b)));
  for (const path of [files.config, ...weights]) {
    for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  }
  return hash.digest('hex');
}

/**
 * modelSha256 of a model directory (or Hub repo id, fetched into the cache
 * first) without loading it: a worker's capability before it has the run's setup.
 */
export async function modelDirSha256(model: string): Promise<string> {
  const dir = await resolveModelDir(model);
  const single = join(dir, WEIGHTS_FILE);
  const exists = await access(single).then(() => true, () => false);
  const weights = exists
    ? [single]
    : [...new Set(Object.values((JSON.parse(await readFile(join(dir, WEIGHTS_INDEX_FILE), 'utf8')) as { weight_map: Record<string, string> }).weight_map))].map((f) => join(dir, basename(f)));
  return modelSha256({ config: join(dir, CONFIG_FILE), weights });
}

/** SHA-256 (hex) of the training set's (relative path, label) list: equal on any host that mounts the same data. */
export function trainSetSha256(root: string, images: readonly LabeledImage[]): string {
  return createHash('sha256')
    .update(JSON.stringify(images.map((i) => [relative(root, i.path), i.label])))
    .digest('hex');
}
