/**
 * Zero-shot classification accuracy of a CLIP on a data set's test split:
 * one prompt per class from a template ("a photo of a {}."), the class whose
 * text feature has the highest cosine with the image's wins.
 */
import * as tf from '@tensorflow/tfjs';
import type { ClipModel } from '../../services/core/clip.ts';
import { hostTidy } from '../../services/core/scope.ts';
import type { HostTensor } from '../../services/core/tensor.ts';
import type { FewShotDataset } from '../../services/io/dataset.ts';
import { preprocessImages } from '../../services/io/images.ts';
import type { ClipTokenizer } from '../../services/io/tokenizer.ts';

export const DEFAULT_TEMPLATE = 'a photo of a {}.';

export interface ZeroShotResult {
  readonly accuracy: number;
  readonly correct: number;
  readonly total: number;
  /** accuracy of each class, indexed by label */
  readonly perClass: readonly number[];
}

/** The test split as [N, size, size, 3] in [0,1] (decoded one at a time: the trainer has one core). */
export function loadTestImages(dataset: FewShotDataset, size: number): Promise<HostTensor> {
  return preprocessImages(dataset.test.map((item) => item.path), { size, cropSize: size }, { concurrency: 1 });
}

export function classPrompts(dataset: FewShotDataset, template: string): string[] {
  return dataset.classNames.map((name) => template.replace('{}', name));
}

const CHUNK = 64;

/** `images` (from loadTestImages) saves decoding the split again on every call. */
export async function zeroShotAccuracy(
  model: ClipModel,
  tokenizer: ClipTokenizer,
  dataset: FewShotDataset,
  template: string = DEFAULT_TEMPLATE,
  images?: HostTensor,
): Promise<ZeroShotResult> {
  const size = model.config.vision.imageSize;
  const pixels = images ?? (await loadTestImages(dataset, size));
  const prompts = tokenizer.encodeBatch(classPrompts(dataset, template), model.config.text.maxPositionEmbeddings).ids;
  const labels = dataset.test.map((item) => item.label);
  const predicted = hostTidy(() => {
    const text = model.encodeTexts(prompts); // [C, P]
    const perImage = size * size * 3;
    const out: number[] = [];
    for (let start = 0; start < labels.length; start += CHUNK) {
      const n = Math.min(CHUNK, labels.length - start);
      hostTidy(() => {
        const x = tf.tensor4d(pixels.data.subarray(start * perImage, (start + n) * perImage), [n, size, size, 3]);
        out.push(...tf.argMax(model.logits(model.encodeImages(x), text), 1).dataSync());
      });
    }
    return out;
  });
  const hits = dataset.classNames.map(() => 0);
  const counts = dataset.classNames.map(() => 0);
  labels.forEach((label, i) => {
    counts[label] += 1;
    if (predicted[i] === label) hits[label] += 1;
  });
  const correct = hits.reduce((a, b) => a + b, 0);
  return { accuracy: correct / labels.length, correct, total: labels.length, perClass: hits.map((h, c) => h / counts[c]) };
}
