/**
 * The pretraining loop: CLIP-like init, `steps` contrastive steps on the
 * seeded synthetic corpus with AdamW under warmup + cosine, progress and
 * periodic zero-shot evaluation reported as events. Deterministic from the
 * seed unless the wall-clock cap (`minutes`) ends it early.
 */
import * as tf from '@tensorflow/tfjs';
import { ClipModel } from '../../services/core/clip.ts';
import type { ClipConfig } from '../../services/core/clip-config.ts';
import { hostTidy } from '../../services/core/scope.ts';
import type { HostTensor } from '../../services/core/tensor.ts';
import { loadDataset } from '../../services/io/datasets.ts';
import type { FewShotDataset } from '../../services/io/dataset.ts';
import { ClipTokenizer } from '../../services/io/tokenizer.ts';
import type { BpeModel } from '../synth/bpe.ts';
import { trainCaptionTokenizer } from '../synth/make-tokenizer.ts';
import { tokenizerJson } from '../synth/tokenizer-json.ts';
import { ADAMW_DEFAULTS, AdamWVariables } from './adamw.ts';
import { pretrainBatch } from './batches.ts';
import { pretrainClipConfig, type PretrainArch } from './config.ts';
import { clipLikeWeights } from './init.ts';
import { warmupCosine } from './schedule.ts';
import { batchLoss, trainStep } from './train-step.ts';
import { loadTestImages, zeroShotAccuracy } from './zero-shot.ts';

export interface RunOptions {
  readonly steps: number;
  readonly batch: number;
  readonly seed: number;
  /** wall-clock cap; null = none */
  readonly minutes: number | null;
  /** end after this many steps of the `steps`-long schedule (reproduces a run the wall-clock cap ended); null = all */
  readonly stopAfter: number | null;
  readonly lr: number;
  readonly warmup: number;
  /** final lr as a fraction of lr */
  readonly lrFloor: number;
  readonly weightDecay: number;
  /** zero-shot evaluation every this many steps (and at the end); 0 = only at the end */
  readonly evalEvery: number;
  /** progress event every this many steps */
  readonly logEvery: number;
  /** ImageFolder task directories evaluated zero-shot */
  readonly tasks: readonly string[];
  readonly template: string;
  readonly arch: PretrainArch;
  /** captions the BPE is trained on (seed 0 of the corpus, as make-tokenizer) */
  readonly tokenizerCaptions: number;
}

export type RunEvent =
  | { event: 'start'; parameters: number; vocab_size: number; steps: number; batch: number; seed: number }
  | { event: 'step'; step: number; loss: number; lr: number; logit_scale: number; images_per_s: number; eta_s: number; tensors: number }
  | { event: 'zero_shot'; step: number; accuracy: Record<string, number> }
  | { event: 'stopped_early'; step: number; minutes: number };

export interface LossPoint {
  /** last step of the window (1-based) */
  readonly step: number;
  /** mean training loss over the window */
  readonly loss: number;
}

export interface RunResult {
  readonly model: ClipModel;
  readonly config: ClipConfig;
  readonly bpe: BpeModel;
  readonly tokenizer: ClipTokenizer;
  readonly stepsDone: number;
  readonly seconds: number;
  readonly lossCurve: readonly LossPoint[];
  readonly zeroShotCurve: readonly { step: number; accuracy: Record<string, number> }[];
}

interface EvalTask {
  readonly name: string;
  readonly dataset: FewShotDataset;
  readonly images: HostTensor;
}

export async function runPretraining(opts: RunOptions, report: (e: RunEvent) => void): Promise<RunResult> {
  const bpe = trainCaptionTokenizer({ seed: 0, captions: opts.tokenizerCaptions, vocabSize: 2048 });
  const tokenizer = ClipTokenizer.fromJson(tokenizerJson(bpe), 'trained caption tokenizer');
  const config = pretrainClipConfig(opts.arch, tokenizer);
  const model = ClipModel.fromWeights(config, clipLikeWeights(config, opts.seed), { explicitTranspose: true, trainable: true });
  const optimiser = new AdamWVariables(model.variables(), { ...ADAMW_DEFAULTS, weightDecay: opts.weightDecay });
  const parameters = model.variables().reduce((n, v) => n + v.size, 0);
  report({ event: 'start', parameters, vocab_size: tokenizer.vocabSize, steps: opts.steps, batch: opts.batch, seed: opts.seed });

  const tasks: EvalTask[] = [];
  for (const root of opts.tasks) {
    const dataset = await loadDataset({ root });
    tasks.push({ name: dataset.name, dataset, images: await loadTestImages(dataset, opts.arch.imageSize) });
  }
  const zeroShotCurve: RunResult['zeroShotCurve'][number][] = [];
  const evaluate = async (step: number) => {
    if (tasks.length === 0) return;
    const accuracy: Record<string, number> = {};
    for (const t of tasks) accuracy[t.name] = (await zeroShotAccuracy(model, tokenizer, t.dataset, opts.template, t.images)).accuracy;
    zeroShotCurve.push({ step, accuracy });
    report({ event: 'zero_shot', step, accuracy });
  };

  const schedule = { peak: opts.lr, warmup: opts.warmup, total: opts.steps, floor: opts.lrFloor };
  const lossCurve: LossPoint[] = [];
  const started = Date.now();
  let trainMs = 0;
  let windowLoss = 0;
  let windowSteps = 0;
  let step = 0;
  const last = Math.min(opts.steps, opts.stopAfter ?? opts.steps);
  while (step < last) {
    if (opts.minutes !== null && Date.now() - started > opts.minutes * 60_000) {
      report({ event: 'stopped_early', step, minutes: opts.minutes });
      break;
    }
    const t0 = Date.now();
    const lr = warmupCosine(schedule, step);
    const batch = pretrainBatch(opts.seed, step, opts.batch, opts.arch.imageSize, tokenizer, opts.arch.contextLength);
    const { loss, temperatureInverse } = trainStep(model, optimiser, batch, lr);
    trainMs += Date.now() - t0;
    step += 1;
    windowLoss += loss;
    windowSteps += 1;
    if (step % opts.logEvery === 0 || step === last) {
      lossCurve.push({ step, loss: windowLoss / windowSteps });
      const perStep = trainMs / step / 1000;
      report({
        event: 'step', step, loss: round(windowLoss / windowSteps), lr: Number(lr.toPrecision(3)), logit_scale: round(temperatureInverse),
        images_per_s: round(opts.batch / perStep), eta_s: Math.round(perStep * (opts.steps - step)), tensors: tf.memory().numTensors,
      });
      windowLoss = 0;
      windowSteps = 0;
    }
    if (opts.evalEvery > 0 && step % opts.evalEvery === 0 && step < last) await evaluate(step);
  }
  await evaluate(step);
  optimiser.dispose();
  return { model, config, bpe, tokenizer, stepsDone: step, seconds: (Date.now() - started) / 1000, lossCurve, zeroShotCurve };
}

/** Mean contrastive loss of the model on a batch of the corpus (the test's yardstick). */
export function corpusLoss(model: ClipModel, tokenizer: ClipTokenizer, seed: number, step: number, batch: number, arch: PretrainArch): number {
  const b = pretrainBatch(seed, step, batch, arch.imageSize, tokenizer, arch.contextLength);
  return hostTidy(() => batchLoss(model, b).dataSync()[0]);
}

const round = (x: number) => Number(x.toFixed(4));
