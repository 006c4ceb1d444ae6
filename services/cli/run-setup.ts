/**
 * Everything a training run needs before its first step, built from the
 * flags: backend, model, data set, the K-shot training set (its decoded
 * originals when the run augments, else preprocessed once to the model's
 * size), the class prompts, the frozen TrainSpec and the
 * initial adapters. The single-process trainer, the coordinator and every
 * worker build it the same way, so they agree on samples and prompts.
 */
import type { BackendChoice } from '../core/backend.ts';
import type { ClipModel } from '../core/clip.ts';
import { invalidArgument } from '../core/errors.ts';
import { initLora, type LoraWeights } from '../core/lora.ts';
import type { SampleSource, TrainingSource } from '../core/shard.ts';
import type { TrainSpec } from '../core/train-spec.ts';
import { loadDataset, type FewShotDataset, type LabeledImage } from '../io/datasets.ts';
import { preprocessImages } from '../io/images.ts';
import { sampleKShot } from '../io/kshot.ts';
import { checkOriginals, DecodedImageCache, originalsSource } from '../io/original-images.ts';
import { loadClipModelDir, type ClipModelDir } from '../io/model-dir.ts';
import type { FlagValues } from './args.ts';
import type { Logger } from './log.ts';
import { loadModel } from './runtime.ts';

interface DataPlan {
  readonly dir: ClipModelDir;
  readonly dataset: FewShotDataset;
  /** tokenised class prompts, one per class */
  readonly prompts: number[][];
}

export interface DataSetup extends DataPlan {
  readonly model: ClipModel;
}

/** What a run computes, without the means to compute it (the coordinator needs no model or pixels). */
export interface RunPlan extends DataPlan {
  readonly spec: TrainSpec;
  readonly trainSet: readonly LabeledImage[];
  readonly initial: LoraWeights;
}

export interface TrainingSetup extends RunPlan {
  readonly model: ClipModel;
  readonly source: TrainingSource;
}

export function promptFor(template: string, className: string): string {
  if (!template.includes('{}')) throw invalidArgument(`--template "${template}" has no {} for the class name`);
  return template.replaceAll('{}', className);
}

async function planData(flags: FlagValues, dir: ClipModelDir, log: Logger): Promise<DataPlan> {
  const dataset = await loadDataset({ root: flags.data as string, splitFile: flags['split-file'] as string | undefined, name: flags['dataset-name'] as string | undefined });
  const tokenizer = await dir.loadTokenizer();
  const prompts = dataset.classNames.map((c) => tokenizer.encode(promptFor(flags.template as string, c), dir.config.text.maxPositionEmbeddings));
  log.info(`data set ${dataset.name}`, { classes: dataset.classNames.length, train: dataset.train.length, test: dataset.test.length });
  return { dir, dataset, prompts };
}

export async function prepareData(flags: FlagValues, backend: BackendChoice, log: Logger): Promise<DataSetup> {
  const { dir, model } = await loadModel(flags.model as string, backend);
  return { ...(await planData(flags, dir, log)), model };
}

/** Packs the given images at the model's size into memory once; the source slices it. */
export async function inMemorySource(images: readonly LabeledImage[], dir: ClipModelDir): Promise<SampleSource> {
  const { size, cropSize } = dir.preprocess;
  const packed = await preprocessImages(
    images.map((i) => i.path),
    { size, cropSize },
  );
  const per = cropSize * cropSize * 3;
  return async (samples) => {
    const pixels = new Float32Array(samples.length * per);
    samples.forEach((s, i) => {
      if (!Number.isInteger(s) || s < 0 || s >= images.length) throw invalidArgument(`sample index ${s} is outside the training set (0..${images.length - 1})`);
      pixels.set(packed.data.subarray(s * per, (s + 1) * per), i * per);
    });
    return { pixels, labels: samples.map((s) => images[s].label) };
  };
}

/** The decoded originals of the training images, each decoded once now so a bad file fails before the first step. */
async function originalsFor(images: readonly LabeledImage[]): Promise<TrainingSource> {
  const cache = new DecodedImageCache();
  await checkOriginals(images, cache);
  return originalsSource(images, cache);
}

function planFrom(data: DataPlan, flags: FlagValues, spec: TrainSpec, log: Logger): RunPlan {
  const trainSet = sampleKShot(data.dataset.train, data.dataset.classNames.length, flags.shots as number, spec.seed, data.dataset.classNames);
  if (spec.batchSize > trainSet.length) {
    log.warn(`--batch-size ${spec.batchSize} is larger than the ${trainSet.length}-image training set: each step uses the whole set`);
  }
  return { ...data, spec, trainSet, initial: initLora(data.dir.config, spec.lora, spec.seed) };
}

/** The run without a model in memory or pixels: for the coordinator, which computes nothing on them. */
export async function planRun(flags: FlagValues, spec: TrainSpec, log: Logger): Promise<RunPlan> {
  return planFrom(await planData(flags, await loadClipModelDir(flags.model as string), log), flags, spec, log);
}

export async function prepareTraining(flags: FlagValues, spec: TrainSpec, backend: BackendChoice, log: Logger): Promise<TrainingSetup> {
  const data = await prepareData(flags, backend, log);
  const plan = planFrom(data, flags, spec, log);
  // augmentation crops the decoded original (CLIP-LoRA's RandomResizedCrop), decoded on first use;
  // without it, every step reads the same model-size centre crops, packed once
  const source = spec.augment === 'crop-flip' ? await originalsFor(plan.trainSet) : await inMemorySource(plan.trainSet, data.dir);
  return { ...plan, model: data.model, source };
}
