/**
 * Everything a training run needs before its first step, built from its
 * RunSpec: model, data set, the K-shot training set (its decoded originals
 * when the run augments, else preprocessed once to the model's size), the
 * class prompts and the initial adapters. The single-process trainer, the
 * coordinator and every worker build it the same way, so they agree on
 * samples and prompts.
 */
import type { BackendChoice } from '../core/backend.ts';
import type { ClipModel } from '../core/clip.ts';
import { invalidArgument } from '../core/errors.ts';
import { initLora, type LoraWeights } from '../core/lora.ts';
import { attackSpec, type AttackSpec } from '../core/evaluate.ts';
import type { SampleSource, ShardEvaluation, TrainingSource } from '../core/shard.ts';
import type { TrainSpec } from '../core/train-spec.ts';
import { loadDataset } from '../io/datasets.ts';
import type { FewShotDataset, LabeledImage } from '../io/dataset.ts';
import { preprocessImages } from '../io/images.ts';
import { balancedSubset } from '../io/eval-subset.ts';
import { sampleKShot } from '../io/kshot.ts';
import { checkOriginals, DecodedImageCache, originalsSource } from '../io/original-images.ts';
import { loadClipModelDir, type ClipModelDir } from '../io/model-dir.ts';
import type { Logger } from '../protocol/log.ts';
import { loadModel, type LoadedModel } from './backend.ts';
import { promptFor, type RunSpec } from './spec.ts';

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
  readonly run: RunSpec;
  /** run.train */
  readonly spec: TrainSpec;
  readonly trainSet: readonly LabeledImage[];
  readonly initial: LoraWeights;
  /** the test images evaluations during training cover (eval-subset.ts); empty when the run does not evaluate */
  readonly evalSet: readonly LabeledImage[];
}

export interface TrainingSetup extends RunPlan {
  readonly model: ClipModel;
  readonly source: TrainingSource;
  /** what EVAL rounds compute on; null when the run does not evaluate */
  readonly evaluation: ShardEvaluation | null;
}

/** What the data and prompts of a run are: its RunSpec, or the part of one an evaluation needs. */
export type DataSource = Pick<RunSpec, 'model' | 'data' | 'template'>;

async function planData(source: DataSource, dir: ClipModelDir, log: Logger): Promise<DataPlan> {
  const { root, splitFile, datasetName } = source.data;
  const dataset = await loadDataset({ root, splitFile: splitFile ?? undefined, name: datasetName ?? undefined });
  const tokenizer = await dir.loadTokenizer();
  const prompts = dataset.classNames.map((c) => tokenizer.encode(promptFor(source.template, c), dir.config.text.maxPositionEmbeddings));
  log.info(`data set ${dataset.name}`, { classes: dataset.classNames.length, train: dataset.train.length, test: dataset.test.length });
  return { dir, dataset, prompts };
}

/** `loaded`: the model already in memory (a worker keeps one per model hash for all its runs); else it is loaded. */
export async function prepareData(source: DataSource, backend: BackendChoice, log: Logger, loaded?: LoadedModel): Promise<DataSetup> {
  const { dir, model } = loaded ?? (await loadModel(source.model, backend));
  return { ...(await planData(source, dir, log)), model };
}

/** Packs the given images at the model's size into memory once; the source slices it. */
export async function inMemorySource(images: readonly LabeledImage[], dir: ClipModelDir, what = 'training set'): Promise<SampleSource> {
  const { size, cropSize } = dir.preprocess;
  const packed = await preprocessImages(
    images.map((i) => i.path),
    { size, cropSize },
  );
  const per = cropSize * cropSize * 3;
  return async (samples) => {
    const pixels = new Float32Array(samples.length * per);
    samples.forEach((s, i) => {
      if (!Number.isInteger(s) || s < 0 || s >= images.length) throw invalidArgument(`sample index ${s} is outside the ${what} (0..${images.length - 1})`);
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

function planFrom(data: DataPlan, run: RunSpec, log: Logger): RunPlan {
  const spec = run.train;
  const trainSet = sampleKShot(data.dataset.train, data.dataset.classNames.length, run.shots, spec.seed, data.dataset.classNames);
  if (spec.batchSize > trainSet.length) {
    log.warn(`--batch-size ${spec.batchSize} is larger than the ${trainSet.length}-image training set: each step uses the whole set`);
  }
  return { ...data, run, spec, trainSet, initial: initLora(data.dir.config, spec.lora, spec.seed), evalSet: evaluationSet(data.dataset, run) };
}

/** The class-balanced test subset of a run that evaluates during training; refused when there is no test split. */
function evaluationSet(dataset: FewShotDataset, run: RunSpec): readonly LabeledImage[] {
  const e = run.evaluation;
  if (e.every === 0) return [];
  if (dataset.test.length === 0) throw invalidArgument(`--eval-every ${e.every}: ${dataset.root} has no test images to evaluate on`);
  return balancedSubset(dataset.test, dataset.classNames.length, e.limit, run.train.seed);
}

/** The attack of a run's evaluations: PGD with random start, step ε/4, seeded by the run's seed (starts keyed by subset position). */
export const evaluationAttack = (run: RunSpec): AttackSpec =>
  attackSpec({ attack: run.evaluation.attack, epsilon: run.evaluation.epsilon, steps: run.evaluation.steps, randomStart: true, restarts: 1, seed: run.train.seed });

/** The run without a model in memory or pixels: for the coordinator, which computes nothing on them. */
export async function planRun(run: RunSpec, log: Logger): Promise<RunPlan> {
  return planFrom(await planData(run, await loadClipModelDir(run.model), log), run, log);
}

/** Model, data, prompts and K-shot set of a run, with the model in memory and its training images: what computes a run. */
export async function prepareRun(run: RunSpec, backend: BackendChoice, log: Logger, loaded?: LoadedModel): Promise<TrainingSetup> {
  const data = await prepareData(run, backend, log, loaded);
  const plan = planFrom(data, run, log);
  // augmentation crops the decoded original (CLIP-LoRA's RandomResizedCrop), decoded on first use;
  // without it, every step reads the same model-size centre crops, packed once
  const source = run.train.augment === 'crop-flip' ? await originalsFor(plan.trainSet) : await inMemorySource(plan.trainSet, data.dir);
  const evaluation = plan.evalSet.length ? { source: await inMemorySource(plan.evalSet, data.dir, 'evaluation subset'), attack: evaluationAttack(run) } : null;
  return { ...plan, model: data.model, source, evaluation };
}
