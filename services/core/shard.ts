/**
 * The work of one round on a set of chunks — what a worker computes, and
 * what the single-process trainer computes for every chunk. Each chunk's
 * result depends only on (adapters, δ, step, round, its sample indices), so
 * any process computing a chunk gets the same numbers.
 *
 * Round kinds:
 *  - 'delta': Σ_i ∇_δ F at the universal δ (one ascent round of Algorithm 1)
 *  - 'lora':  Σ_i ∇ F w.r.t. the image-tower LoRA factors and w.r.t. the class
 *             text features T, at δ (universal), or after per-sample PGD
 *  - 'local-delta': τ ascent steps on the shard's own copy of δ, then 'lora'
 *  - 'text':  the text-tower LoRA gradient, the VJP of T(θ) with G = Σ_chunks ∂F/∂T;
 *             its chunks are groups of classes (textChunks), not samples
 *  - 'eval':  per chunk of the evaluation subset (positions in it), the number of
 *             correct predictions and the loss sum under the run's evaluation
 *             attack, at the adapters without dropout
 * Splitting the text tower's backward off the chunks runs it once per step
 * instead of once per chunk, and the chunk sums of G keep it deterministic.
 * T is separable by class, so the VJP is the sum over class groups of each
 * group's VJP: a cluster spreads the groups over its workers and adds their
 * results in group order, as one process does.
 */
import * as tf from '@tensorflow/tfjs';
import { augmentImages } from './augment.ts';
import type { PixelImage } from './resample.ts';
import type { Adapters, ClipModel } from './clip.ts';
import type { DropoutPlan } from './dropout.ts';
import { invalidArgument } from './errors.ts';
import { classFeatures, evaluateBatch, type AttackSpec } from './evaluate.ts';
import { loraScale, type LoraSite, type LoraWeights } from './lora.ts';
import { clampToBall, pgd } from './attacks.ts';
import { crossEntropyPerSample, oneHotLabels, perturbedLoss } from './objective.ts';
import { Purpose } from './rng.ts';
import { hostTidy } from './scope.ts';
import { ascentSteps, type TrainSpec } from './train-spec.ts';

export type RoundKind = 'delta' | 'lora' | 'local-delta' | 'text' | 'eval';

export interface Chunk {
  readonly index: number;
  /** positions in the K-shot training set; class indices in a 'text' round */
  readonly samples: readonly number[];
}

export interface RoundTask {
  readonly step: number;
  readonly round: number;
  readonly kind: RoundKind;
  readonly chunks: readonly Chunk[];
  /** the universal δ [H·W·3] (null: δ = 0) */
  readonly delta: Float32Array | null;
  /** G = Σ ∂F/∂T [C·P], for 'text' (whose chunks are class groups; none = all of textChunks) */
  readonly textGrad: Float32Array | null;
}

export interface ChunkResult {
  readonly index: number;
  readonly count: number;
  readonly advLossSum: number;
  /** loss at δ = 0 (NaN when not computed) */
  readonly cleanLossSum: number;
  /** 'delta', 'text_features', `${site}.A`, `${site}.B` → sums over the chunk (none for 'eval') */
  readonly grads: ReadonlyMap<string, Float32Array>;
  /** 'eval': correct predictions in the chunk (its advLossSum is the loss sum at the attacked input) */
  readonly correct?: number;
}

export interface RoundResult {
  readonly chunks: readonly ChunkResult[];
  /** local-delta: the shard's final δ and its sample count */
  readonly localDelta: { readonly count: number; readonly delta: Float32Array } | null;
}

/** The images and labels of some samples, already at the model's size, in [0,1]. */
export interface SampleBatch {
  readonly pixels: Float32Array; // [n, S, S, 3]
  readonly labels: readonly number[];
}
export type SampleSource = (samples: readonly number[]) => Promise<SampleBatch>;

/** The decoded original images of some samples, for augmentation (RandomResizedCrop acts on the original). */
export interface OriginalsBatch {
  readonly originals: readonly PixelImage[];
  readonly labels: readonly number[];
}
/**
 * What training reads: originals when it augments, model-size pixels when
 * not. A source of pixels only (synthetic benches, tests) is cropped from
 * those pixels when the run augments.
 */
export type TrainingSource = (samples: readonly number[]) => Promise<SampleBatch | OriginalsBatch>;

/** What an 'eval' round computes on: the evaluation subset's images by position, and the attack. */
export interface ShardEvaluation {
  readonly source: SampleSource;
  readonly attack: AttackSpec;
}

/** classes per text-tower pass: bounds activation memory (the wasm heap is 4 GB) */
const TEXT_GROUP = 4;

/** Training images a task covers: a text round's chunks hold classes, which count for no worker's rate or sample total. */
export const imageSamplesOf = (task: RoundTask): number => (task.kind === 'text' ? 0 : task.chunks.reduce((n, c) => n + c.samples.length, 0));

/** The chunks of a 'text' round: the classes in groups of TEXT_GROUP, in order. */
export function textChunks(classes: number): Chunk[] {
  const chunks: Chunk[] = [];
  for (let c = 0; c < classes; c += TEXT_GROUP) chunks.push({ index: chunks.length, samples: [...Array(Math.min(TEXT_GROUP, classes - c)).keys()].map((i) => c + i) });
  return chunks;
}

/**
 * What the step driver puts in a 'text' round's `chunks`: nothing, meaning
 * every class group, since the class groups are the executor's to know (a
 * remote executor then spreads them over its workers, which each get some).
 */
export const ALL_CLASS_GROUPS: readonly Chunk[] = Object.freeze([]);

/** The class groups a 'text' round covers: its own chunks, or every group when it has ALL_CLASS_GROUPS. */
export const textRoundChunks = (task: RoundTask, classes: number): readonly Chunk[] => (task.chunks.length ? task.chunks : textChunks(classes));

export const gradKeyA = (site: string): string => `${site}.A`;
export const gradKeyB = (site: string): string => `${site}.B`;

/** Adapter factors as tensors, for one adapter version. */
export class AdapterTensors {
  readonly scale: number;
  readonly a = new Map<string, tf.Tensor2D>();
  readonly b = new Map<string, tf.Tensor2D>();
  constructor(readonly weights: LoraWeights) {
    this.scale = loraScale(weights.config);
    weights.sites.forEach((s, i) => {
      this.a.set(s.key, tf.tensor2d(weights.a[i].data, [weights.a[i].shape[0], weights.a[i].shape[1]]));
      this.b.set(s.key, tf.tensor2d(weights.b[i].data, [weights.b[i].shape[0], weights.b[i].shape[1]]));
    });
  }
  adapters(dropout: DropoutPlan | null, override?: ReadonlyMap<string, { a: tf.Tensor2D; b: tf.Tensor2D }>): Adapters {
    const factors = new Map<string, { a: tf.Tensor2D; b: tf.Tensor2D }>();
    for (const key of this.a.keys()) factors.set(key, override?.get(key) ?? { a: this.a.get(key)!, b: this.b.get(key)! });
    return { scale: this.scale, factors, dropout };
  }
  /** The factors of some sites as one list, [A₀, B₀, A₁, B₁, …]: what a round differentiates. */
  factorsOf(sites: readonly LoraSite[]): tf.Tensor2D[] {
    return sites.flatMap((s) => [this.a.get(s.key)!, this.b.get(s.key)!]);
  }
  /** The adapters with those sites' factors replaced by `factors` (laid out as factorsOf), so a loss is a function of them. */
  overriding(sites: readonly LoraSite[], factors: readonly tf.Tensor[], dropout: DropoutPlan | null): Adapters {
    return this.adapters(dropout, new Map(sites.map((s, i) => [s.key, { a: factors[2 * i] as tf.Tensor2D, b: factors[2 * i + 1] as tf.Tensor2D }])));
  }
  dispose(): void {
    for (const t of [...this.a.values(), ...this.b.values()]) t.dispose();
  }
}

export class ShardComputer {
  private textCache: { key: string; features: tf.Tensor2D } | null = null;
  /** this step's augmented images by sample */
  private augmented: { step: number; bySample: Map<number, Float32Array> } = { step: -1, bySample: new Map() };

  constructor(
    private readonly model: ClipModel,
    private readonly spec: TrainSpec,
    /** tokenised class prompts, one per class */
    private readonly prompts: readonly (readonly number[])[],
    private readonly source: TrainingSource,
    /** null: the run does not evaluate, and an 'eval' round is refused */
    private readonly evaluation: ShardEvaluation | null = null,
  ) {}

  /** classes (prompts) the text round's chunks group */
  get classes(): number {
    return this.prompts.length;
  }

  private get imageSize(): number {
    return this.model.config.vision.imageSize;
  }

  /** text dropout of some classes at this step: masks keyed by (seed, step, class) */
  private textDropout(step: number, classes: readonly number[]): DropoutPlan | null {
    const p = this.spec.lora.dropout;
    return p > 0 ? { p, groups: classes.map((c) => [Purpose.textDropout, this.spec.seed, step, c]) } : null;
  }

  /** the class prompts in groups of TEXT_GROUP, to bound the text tower's activation memory */
  private classGroups(): (readonly number[])[] {
    return textChunks(this.prompts.length).map((c) => c.samples);
  }

  private imageDropout(step: number, round: number, samples: readonly number[]): DropoutPlan | null {
    const p = this.spec.lora.dropout;
    return p > 0 ? { p, groups: samples.map((s) => [Purpose.imageDropout, this.spec.seed, step, round, s]) } : null;
  }

  /** T at this step (text dropout of this step), cached for the step's rounds. */
  private textFeatures(adapter: AdapterTensors, version: number, step: number): tf.Tensor2D {
    const key = `${version}/${step}`;
    if (this.textCache?.key !== key) {
      this.textCache?.features.dispose();
      const parts = this.classGroups().map((g) => tf.tidy(() => this.model.encodeTexts(g.map((c) => this.prompts[c]), adapter.adapters(this.textDropout(step, g)))));
      const features = tf.concat(parts, 0);
      parts.forEach((t) => t.dispose());
      this.textCache = { key, features: tf.keep(features) };
    }
    return this.textCache.features;
  }

  dispose(): void {
    this.textCache?.features.dispose();
    this.textCache = null;
    this.augmented = { step: -1, bySample: new Map() };
  }

  async compute(task: RoundTask, adapter: AdapterTensors, version: number): Promise<RoundResult> {
    if (task.kind === 'text') return this.textRound(task, adapter);
    if (task.kind === 'eval') return this.evalRound(task, adapter);
    const text = this.textFeatures(adapter, version, task.step);
    const batches = await Promise.all(task.chunks.map((c) => this.source(c.samples)));
    if (task.kind === 'local-delta') return this.localDeltaRound(task, adapter, text, batches);
    const chunks = task.chunks.map((chunk, i) =>
      task.kind === 'delta'
        ? this.deltaChunk(task, chunk, batches[i], adapter, text, task.delta)
        : this.loraChunk(task, chunk, batches[i], adapter, text, task.delta, task.round),
    );
    return { chunks, localDelta: null };
  }

  /** the model's input [n, S, S, 3] in [0,1]: augmented from (seed, step, sample), the same in every round of the step */
  private images(batch: SampleBatch | OriginalsBatch, step: number, samples: readonly number[]): tf.Tensor4D {
    const s = this.imageSize;
    const per = s * s * 3;
    let images: readonly PixelImage[];
    if ('originals' in batch) {
      if (this.spec.augment === 'none') throw invalidArgument('a run without augmentation needs model-size pixels, but the sample source gave original images');
      if (batch.originals.length !== samples.length) throw invalidArgument(`sample batch has ${batch.originals.length} images, expected ${samples.length}`);
      images = batch.originals;
    } else {
      if (batch.pixels.length !== samples.length * per) throw invalidArgument(`sample batch has ${batch.pixels.length} values, expected ${samples.length}×${s}×${s}×3`);
      if (this.spec.augment === 'none') return tf.tensor4d(batch.pixels, [samples.length, s, s, 3]);
      images = samples.map((_, i): PixelImage => ({ width: s, height: s, data: batch.pixels.subarray(i * per, (i + 1) * per) }));
    }
    // a step's rounds read the same crops: resample each sample once per step
    if (this.augmented.step !== step) this.augmented = { step, bySample: new Map() };
    const pixels = new Float32Array(samples.length * per);
    samples.forEach((sample, i) => {
      let image = this.augmented.bySample.get(sample);
      if (!image) {
        image = augmentImages([images[i]], this.spec.seed, step, [sample], s);
        this.augmented.bySample.set(sample, image);
      }
      pixels.set(image, i * per);
    });
    return tf.tensor4d(pixels, [samples.length, s, s, 3]);
  }

  private deltaTensor(delta: Float32Array | null): tf.Tensor3D {
    const s = this.imageSize;
    return delta ? tf.tensor3d(delta, [s, s, 3]) : tf.zeros([s, s, 3]);
  }

  /** Σ_i ∇_δ F over one chunk at the universal δ */
  private deltaChunk(task: RoundTask, chunk: Chunk, batch: SampleBatch | OriginalsBatch, adapter: AdapterTensors, text: tf.Tensor2D, delta: Float32Array | null): ChunkResult {
    return hostTidy(() => {
      const x = this.images(batch, task.step, chunk.samples);
      const y = oneHotLabels(batch.labels, this.prompts.length);
      const adapters = adapter.adapters(this.imageDropout(task.step, task.round, chunk.samples));
      const { value, grad } = tf.valueAndGrad((d: tf.Tensor) => perturbedLoss(this.model, x, d, text, y, adapters))(this.deltaTensor(delta));
      return { index: chunk.index, count: chunk.samples.length, advLossSum: value.dataSync()[0], cleanLossSum: NaN, grads: new Map([['delta', grad.dataSync() as Float32Array]]) };
    });
  }

  /**
   * Per-sample PGD (Madry) with the attacks' PGD: a random start in Δ keyed
   * by (seed, step, round, sample), τ projected steps of η_δ along the
   * sample's own loss gradient (its sign with --delta-step sign); the
   * dropout masks of ascent step k are keyed by (seed, step, k, sample).
   * Returns the perturbed images clip01(x + δ_i).
   */
  private perSampleImages(task: RoundTask, chunk: Chunk, x: tf.Tensor4D, y: tf.Tensor2D, adapter: AdapterTensors, text: tf.Tensor2D): tf.Tensor4D {
    const loss = (xx: tf.Tensor4D, k = 0) => crossEntropyPerSample(this.model.logits(this.model.encodeImages(xx, adapter.adapters(this.imageDropout(task.step, k, chunk.samples))), text), y);
    return pgd(loss, x, {
      epsilon: this.spec.epsilon,
      steps: ascentSteps(this.spec),
      stepSize: this.spec.lrDelta,
      stepRule: this.spec.deltaStep,
      randomStart: true,
      restarts: 1,
      startKeys: chunk.samples.map((s) => [this.spec.seed, task.step, task.round, s]),
    });
  }

  /** Σ_i ∇ F w.r.t. the image-tower factors and the text features, at δ */
  private loraChunk(task: RoundTask, chunk: Chunk, batch: SampleBatch | OriginalsBatch, adapter: AdapterTensors, text: tf.Tensor2D, delta: Float32Array | null, round: number): ChunkResult {
    return hostTidy(() => {
      const y = oneHotLabels(batch.labels, this.prompts.length);
      const perSample = this.spec.perturbation === 'per-sample' && ascentSteps(this.spec) > 0;
      const x = this.images(batch, task.step, chunk.samples);
      const xAt = perSample ? this.perSampleImages(task, chunk, x, y, adapter, text) : x;
      const d: tf.Tensor | null = !perSample && delta ? this.deltaTensor(delta) : null;
      const perturbed = perSample || d !== null;
      const dropout = this.imageDropout(task.step, round, chunk.samples);
      const sites = adapter.weights.sites.filter((s) => s.tower === 'vision');
      const f = (...args: tf.Tensor[]) => perturbedLoss(this.model, xAt, d, args[args.length - 1] as tf.Tensor2D, y, adapter.overriding(sites, args, dropout));
      const { value, grads } = tf.valueAndGrads(f)([...adapter.factorsOf(sites), text]);
      const out = factorGrads(sites, grads);
      out.set('text_features', grads[grads.length - 1].dataSync() as Float32Array);
      const clean = this.spec.cleanLoss && perturbed ? perturbedLoss(this.model, x, null, text, y, adapter.adapters(dropout)).dataSync()[0] : perturbed ? NaN : value.dataSync()[0];
      return { index: chunk.index, count: chunk.samples.length, advLossSum: value.dataSync()[0], cleanLossSum: clean, grads: out };
    });
  }

  /** local-δ (federated): τ ascent steps on this shard's own δ, then the LoRA gradients at it. */
  private localDeltaRound(task: RoundTask, adapter: AdapterTensors, text: tf.Tensor2D, batches: readonly (SampleBatch | OriginalsBatch)[]): RoundResult {
    const size = this.imageSize * this.imageSize * 3;
    let delta: Float32Array = task.delta ? Float32Array.from(task.delta) : new Float32Array(size);
    const count = task.chunks.reduce((n, c) => n + c.samples.length, 0);
    for (let k = 0; k < ascentSteps(this.spec); k++) {
      const sum = new Float32Array(size);
      task.chunks.forEach((c, i) => {
        addInto(sum, this.deltaChunk({ ...task, round: k }, c, batches[i], adapter, text, delta).grads.get('delta')!);
      });
      delta = ascend(delta, sum, count, this.spec);
    }
    const chunks = task.chunks.map((c, i) => this.loraChunk(task, c, batches[i], adapter, text, delta, ascentSteps(this.spec)));
    return { chunks, localDelta: { count, delta } };
  }

  /** Correct predictions and loss sums of evaluation chunks under the run's attack, no dropout (text features included). */
  private async evalRound(task: RoundTask, adapter: AdapterTensors): Promise<RoundResult> {
    if (!this.evaluation) throw invalidArgument('an EVAL round came, but this run does not evaluate (evaluation.every is 0)');
    const { source, attack } = this.evaluation;
    const batches = await Promise.all(task.chunks.map((c) => source(c.samples)));
    const adapters = adapter.adapters(null);
    const text = classFeatures(this.model, this.prompts, adapters);
    try {
      const chunks = task.chunks.map((chunk, i): ChunkResult => {
        const x = tf.tensor4d(batches[i].pixels, [chunk.samples.length, this.imageSize, this.imageSize, 3]);
        try {
          const outcome = evaluateBatch(this.model, adapters, text, x, batches[i].labels, chunk.samples, attack);
          return { index: chunk.index, count: chunk.samples.length, advLossSum: outcome.lossSum, cleanLossSum: Number.NaN, grads: new Map(), correct: outcome.correct };
        } finally {
          x.dispose();
        }
      });
      return { chunks, localDelta: null };
    } finally {
      text.dispose();
    }
  }

  /** the text-tower LoRA gradient: VJP of T(θ_text) with G, one chunk result per class group */
  private textRound(task: RoundTask, adapter: AdapterTensors): RoundResult {
    if (!task.textGrad) throw invalidArgument('a text round needs the text-feature gradient G');
    const classes = this.classes;
    const groups = textRoundChunks(task, classes);
    for (const g of groups) {
      if (g.samples.some((c) => !Number.isInteger(c) || c < 0 || c >= classes)) throw invalidArgument(`text chunk ${g.index}: class indices must be in [0, ${classes})`);
    }
    const sites = adapter.weights.sites.filter((s) => s.tower === 'text');
    const projection = this.model.config.projectionDim;
    const chunks = groups.map((group): ChunkResult => {
      let grads = new Map<string, Float32Array>();
      if (sites.length) {
        hostTidy(() => {
          const rows = new Float32Array(group.samples.length * projection);
          group.samples.forEach((c, i) => rows.set(task.textGrad!.subarray(c * projection, (c + 1) * projection), i * projection));
          const g = tf.tensor2d(rows, [group.samples.length, projection]);
          const prompts = group.samples.map((c) => this.prompts[c]);
          const dropout = this.textDropout(task.step, group.samples);
          const f = (...args: tf.Tensor[]) => tf.sum(tf.mul(this.model.encodeTexts(prompts, adapter.overriding(sites, args, dropout)), g)) as tf.Scalar;
          grads = factorGrads(sites, tf.grads(f)(adapter.factorsOf(sites)));
        });
      }
      return { index: group.index, count: group.samples.length, advLossSum: 0, cleanLossSum: Number.NaN, grads };
    });
    return { chunks, localDelta: null };
  }
}

/** Gradients laid out as AdapterTensors.factorsOf, by their wire names (`<site>.A`, `<site>.B`), copied off the tensors. */
function factorGrads(sites: readonly LoraSite[], grads: readonly tf.Tensor[]): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  sites.forEach((s, i) => {
    out.set(gradKeyA(s.key), (grads[2 * i].dataSync() as Float32Array).slice());
    out.set(gradKeyB(s.key), (grads[2 * i + 1].dataSync() as Float32Array).slice());
  });
  return out;
}

/** acc += g, element-wise, in place */
export function addInto(acc: Float32Array, g: Float32Array): void {
  for (let j = 0; j < acc.length; j++) acc[j] += g[j];
}

/** One projected ascent step on the universal δ: δ ← P_Δ(δ + η_δ·g) or with sign(g); g = sum / count; η_δ is --lr-delta unless calibrated. */
export function ascend(delta: Float32Array, gradSum: Float32Array, count: number, spec: TrainSpec, lrDelta = spec.lrDelta): Float32Array {
  const stepped = new Float32Array(delta.length);
  for (let j = 0; j < delta.length; j++) {
    const g = gradSum[j] / count;
    stepped[j] = delta[j] + lrDelta * (spec.deltaStep === 'sign' ? Math.sign(g) : g);
  }
  // rounding to float32 is monotone, so clamping after it equals clamping before
  return hostTidy(() => (clampToBall(tf.tensor1d(stepped), spec.epsilon).dataSync() as Float32Array).slice());
}
