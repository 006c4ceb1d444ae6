/**
 * Few-shot data sets on disk, in either of the two layouts the paper's
 * protocol uses: a CoOp/CLIP-LoRA split file (`split_zhou_<Name>.json`) or a
 * plain ImageFolder (`train/<class>/*`, `test/<class>/*`). Only paths and
 * labels are loaded here; pixels are read later, by whoever needs them.
 */
import { readdir } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { notFound } from '../core/errors.ts';
import { loadCoopSplit } from './coop-split.ts';
import { imageFolderBase, loadImageFolder } from './image-folder.ts';
import type { FewShotDataset } from './dataset.ts';
import { realDirectory } from './paths.ts';

export interface LoadDatasetOptions {
  /** the data set's directory (or, for a split file, its image directory or CoOp's data root) */
  readonly root: string;
  /** a CoOp split file; without it, an ImageFolder under root, else the one split_zhou_*.json in root */
  readonly splitFile?: string;
  /** the data set's name; picks class-name conventions for the paper's eight (see class-names.ts) */
  readonly name?: string;
}

export async function loadDataset(options: LoadDatasetOptions): Promise<FewShotDataset> {
  const root = await realDirectory(options.root, 'data root');
  if (options.splitFile !== undefined) return loadCoopSplit(root, options.splitFile, options.name);
  const base = await imageFolderBase(root);
  if (base !== undefined) return loadImageFolder(root, base, options.name ?? basename(root));
  const splitFiles = (await readdir(root)).filter((f) => /^split_zhou_.+\.json$/.test(f)).sort();
  if (splitFiles.length === 1) return loadCoopSplit(root, join(root, splitFiles[0]), options.name);
  throw notFound(
    `${options.root}: no data set found: expected train/<class>/ and test/<class>/ (or images/train/), ` +
      (splitFiles.length > 1
        ? `or one split file, found ${splitFiles.length} (${splitFiles.join(', ')}): pass --split-file`
        : 'or a split_zhou_<Name>.json split file'),
  );
}
