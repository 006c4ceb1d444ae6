/**
 * CoOp / CLIP-LoRA split files: `split_zhou_<Name>.json` holding
 * {"train": [[relpath, label, classname], ...], "val": [...], "test": [...]},
 * with paths relative to the data set's image directory. The file is data
 * from elsewhere, so every entry is checked: its shape, its label against
 * the classes of train, its class name against the label's, and its path
 * against the image directory (see paths.ts).
 */
import { readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { dataLoss, invalidArgument, notFound } from '../core/errors.ts';
import { mapBounded } from './bounded-map.ts';
import { className, coopDataset, type CoopDataset } from './class-names.ts';
import type { FewShotDataset, LabeledImage } from './dataset.ts';
import { isDirectory, realDirectory, resolveInside } from './paths.ts';

/** Where CoOp keeps each data set under its data root: `<dir>/<images>/<relpath>`. */
const imageDirs: Readonly<Record<CoopDataset, { dir: string; images: string }>> = {
  ImageNet: { dir: 'imagenet', images: 'images' },
  Caltech101: { dir: 'caltech-101', images: '101_ObjectCategories' },
  OxfordPets: { dir: 'oxford_pets', images: 'images' },
  OxfordFlowers: { dir: 'oxford_flowers', images: 'jpg' },
  Food101: { dir: 'food-101', images: 'images' },
  SUN397: { dir: 'sun397', images: 'SUN397' },
  DescribableTextures: { dir: 'dtd', images: 'images' },
  UCF101: { dir: 'ucf101', images: 'UCF-101-midframes' },
};

interface Entry {
  readonly relPath: string;
  readonly label: number;
  readonly rawName: string;
}

/** Realpath checks are I/O-bound (one stat chain each), so more than the core count pays off. */
const resolveConcurrency = 16;

/**
 * Loads a split file. `root` is a real directory: the image directory
 * itself, the data set's directory (e.g. oxford_pets/) or CoOp's data root;
 * for the paper's data sets the image directory is found under it.
 */
export async function loadCoopSplit(root: string, splitFile: string, name?: string): Promise<FewShotDataset> {
  const datasetName = name ?? /^split_zhou_(.+)\.json$/.exec(basename(splitFile))?.[1] ?? basename(root);
  const dataset = coopDataset(datasetName);
  const imageDir = await findImageDir(root, dataset);
  const splits = parseSplitFile(splitFile, await readSplitFile(splitFile));

  const rawNames = trainClasses(splitFile, splits.train);
  for (const key of ['val', 'test'] as const) {
    for (const [i, entry] of (splits[key] ?? []).entries()) checkEntry(splitFile, key, i, entry, rawNames);
  }

  const resolveAll = (key: string, entries: readonly Entry[]) =>
    mapBounded(entries, resolveConcurrency, async (entry, i): Promise<LabeledImage> => ({
      path: await resolveInside(imageDir, entry.relPath, `${splitFile}: ${key}[${i}]`),
      label: entry.label,
    }));
  const val = splits.val !== undefined ? await resolveAll('val', splits.val) : undefined;
  return {
    name: datasetName,
    classNames: rawNames.map((raw) => className(dataset, raw)),
    train: await resolveAll('train', splits.train),
    ...(val !== undefined ? { val } : {}),
    test: await resolveAll('test', splits.test),
    root: imageDir,
  };
}

async function findImageDir(root: string, dataset: CoopDataset | undefined): Promise<string> {
  if (dataset === undefined) return root;
  const { dir, images } = imageDirs[dataset];
  for (const candidate of [join(root, dir, images), join(root, images)]) {
    if (await isDirectory(candidate)) return realDirectory(candidate, `${dataset} image directory`);
  }
  return root;
}

async function readSplitFile(splitFile: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(splitFile, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw notFound(`${splitFile}: split file does not exist`);
    throw dataLoss(`${splitFile}: cannot read split file (${error instanceof Error ? error.message : String(error)})`);
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw dataLoss(`${splitFile}: split file is not valid JSON (${error instanceof Error ? error.message : String(error)})`);
  }
}

function parseSplitFile(splitFile: string, json: unknown): { train: Entry[]; val?: Entry[]; test: Entry[] } {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw dataLoss(`${splitFile}: expected an object with "train" and "test" lists`);
  }
  const record = json as Record<string, unknown>;
  const list = (key: string): Entry[] => {
    const value = record[key];
    if (!Array.isArray(value)) throw dataLoss(`${splitFile}: "${key}" is not a list of [path, label, classname]`);
    return value.map((item, i) => {
      if (!Array.isArray(item) || typeof item[0] !== 'string' || typeof item[1] !== 'number' || typeof item[2] !== 'string') {
        throw dataLoss(`${splitFile}: ${key}[${i}] is ${JSON.stringify(item)}, expected [path, label, classname]`);
      }
      return { relPath: item[0], label: item[1], rawName: item[2] };
    });
  };
  return { train: list('train'), ...(record.val !== undefined ? { val: list('val') } : {}), test: list('test') };
}

/** The raw class names by label; train must name every label 0..C-1 (few-shot draws from train). */
function trainClasses(splitFile: string, train: readonly Entry[]): string[] {
  if (train.length === 0) throw invalidArgument(`${splitFile}: "train" is empty`);
  const byLabel: string[] = [];
  for (const [i, { label, rawName }] of train.entries()) {
    // every class needs a train entry, so a label >= the entry count cannot be right
    if (!Number.isInteger(label) || label < 0 || label >= train.length) {
      throw invalidArgument(
        `${splitFile}: train[${i}] has label ${label}, out of range [0, ${train.length}) for ${train.length} train entries`,
      );
    }
    byLabel[label] ??= rawName;
    if (byLabel[label] !== rawName) {
      throw invalidArgument(`${splitFile}: train[${i}] calls class ${label} "${rawName}", earlier entries "${byLabel[label]}"`);
    }
  }
  const gap = Array.from(byLabel.keys()).find((label) => byLabel[label] === undefined);
  if (gap !== undefined) {
    throw invalidArgument(`${splitFile}: class ${gap} has no train image (labels must be 0..${byLabel.length - 1})`);
  }
  return byLabel;
}

function checkEntry(splitFile: string, key: string, i: number, entry: Entry, rawNames: readonly string[]): void {
  if (!Number.isInteger(entry.label) || entry.label < 0 || entry.label >= rawNames.length) {
    throw invalidArgument(
      `${splitFile}: ${key}[${i}] has label ${entry.label}, out of range [0, ${rawNames.length}) of the train classes`,
    );
  }
  if (rawNames[entry.label] !== entry.rawName) {
    throw invalidArgument(
      `${splitFile}: ${key}[${i}] calls class ${entry.label} "${entry.rawName}", train calls it "${rawNames[entry.label]}"`,
    );
  }
}
