/**
 * The ImageFolder layout: `train/<class>/*.{png,jpg,jpeg}` and
 * `test/<class>/*` and/or `val/<class>/*`, optionally under `images/` with a
 * `classnames.txt` (CoOp's ImageNet: `images/train`, `images/val`, lines
 * "n01440764 tench"). Labels are the indices of the class folders sorted by
 * name, as torchvision's ImageFolder and CoOp assign them; files are sorted
 * by name so every process sees the same order.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { dataLoss, invalidArgument } from '../core/errors.ts';
import { className, coopDataset, ignoredClassFolders } from './class-names.ts';
import type { FewShotDataset, LabeledImage } from './dataset.ts';
import { isDirectory } from './paths.ts';

const imageExtension = /\.(png|jpe?g)$/i;

/** The directory holding train/ (root itself or root/images), or undefined when there is none. */
export async function imageFolderBase(root: string): Promise<string | undefined> {
  for (const base of [root, join(root, 'images')]) {
    if (await isDirectory(join(base, 'train'))) return base;
  }
  return undefined;
}

export async function loadImageFolder(root: string, base: string, name: string): Promise<FewShotDataset> {
  const dataset = coopDataset(name);
  const hasTest = await isDirectory(join(base, 'test'));
  const hasVal = await isDirectory(join(base, 'val'));
  if (!hasTest && !hasVal) throw invalidArgument(`${base}: has train/ but neither test/ nor val/`);

  const ignored = new Set(ignoredClassFolders(dataset));
  const classFolders = (dir: string) => listDirectory(dir).then((l) => l.directories.filter((d) => !ignored.has(d)));
  const folders = await classFolders(join(base, 'train'));
  if (folders.length === 0) throw invalidArgument(`${join(base, 'train')}: no class folders`);
  const otherSplits = [...(hasTest ? ['test'] : []), ...(hasVal ? ['val'] : [])];
  for (const split of otherSplits) sameClasses(join(base, 'train'), folders, join(base, split), await classFolders(join(base, split)));

  const mapping = await readClassnamesTxt([root, base]);
  const rawNames = folders.map((folder) => {
    if (mapping === undefined) return folder;
    const mapped = mapping.names.get(folder);
    if (mapped === undefined) throw invalidArgument(`${mapping.path}: no name for class folder "${folder}"`);
    return mapped;
  });

  const load = (split: string) => loadSplit(join(base, split), folders);
  // CoOp evaluates ImageNet on val/: a data set with only val/ uses it as the test set
  const test = await load(hasTest ? 'test' : 'val');
  const val = hasTest && hasVal ? await load('val') : undefined;
  return {
    name,
    classNames: rawNames.map((raw) => className(dataset, raw)),
    train: await load('train'),
    ...(val !== undefined ? { val } : {}),
    test,
    root: base,
  };
}

async function loadSplit(dir: string, folders: readonly string[]): Promise<LabeledImage[]> {
  const items: LabeledImage[] = [];
  for (const [label, folder] of folders.entries()) {
    const classDir = join(dir, folder);
    const files = (await listDirectory(classDir)).files.filter((f) => imageExtension.test(f));
    if (files.length === 0) throw invalidArgument(`${classDir}: class folder has no images (.png, .jpg, .jpeg)`);
    for (const file of files) items.push({ path: join(classDir, file), label });
  }
  return items;
}

function sameClasses(trainDir: string, train: readonly string[], otherDir: string, other: readonly string[]): void {
  const missing = train.filter((c) => !other.includes(c));
  const extra = other.filter((c) => !train.includes(c));
  if (missing.length === 0 && extra.length === 0) return;
  const list = (names: string[]) => names.slice(0, 5).map((n) => `"${n}"`).join(', ') + (names.length > 5 ? ', …' : '');
  throw invalidArgument(
    `${otherDir}: class folders differ from ${trainDir}` +
      (missing.length > 0 ? `; missing ${list(missing)}` : '') +
      (extra.length > 0 ? `; not in train: ${list(extra)}` : ''),
  );
}

/** Sorted names of subdirectories and files (symlinks followed); dot-entries are not data. */
async function listDirectory(dir: string): Promise<{ directories: string[]; files: string[] }> {
  const directories: string[] = [];
  const files: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (entry.name.startsWith('.')) continue;
    const isLink = entry.isSymbolicLink();
    const info = isLink ? await stat(join(dir, entry.name)).catch(() => undefined) : undefined;
    if (isLink ? info?.isDirectory() : entry.isDirectory()) directories.push(entry.name);
    else if (isLink ? info?.isFile() : entry.isFile()) files.push(entry.name);
  }
  // code-unit order, not locale order, so the labels are the same on every machine
  const byName = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
  return { directories: directories.sort(byName), files: files.sort(byName) };
}

/** CoOp's classnames.txt: "<folder> <class name words>" per line; the first of `dirs` that has one. */
async function readClassnamesTxt(dirs: readonly string[]): Promise<{ path: string; names: Map<string, string> } | undefined> {
  for (const dir of new Set(dirs)) {
    const path = join(dir, 'classnames.txt');
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw dataLoss(`${path}: cannot read (${error instanceof Error ? error.message : String(error)})`);
    }
    const names = new Map<string, string>();
    for (const [i, line] of text.split(/\r?\n/).entries()) {
      const words = line.trim().split(/\s+/).filter(Boolean);
      if (words.length === 0) continue;
      if (words.length < 2) throw dataLoss(`${path}:${i + 1}: expected "<folder> <class name>", got "${line.trim()}"`);
      names.set(words[0], words.slice(1).join(' '));
    }
    return { path, names };
  }
  return undefined;
}
