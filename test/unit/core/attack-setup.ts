/**
 * The attacks' test bench: the f32 fixture CLIP (logit scale 10, so the loss
 * is not saturated) as a 4-class classifier over four golden texts, on the
 * golden images and smooth random ones, labelled with its own clean
 * predictions (clean accuracy 100%). A gradient-masked variant puts a
 * quantiser (round to 1/255, zero gradient) in front of it.
 */
import * as tf from '@tensorflow/tfjs';
import type { Classifier } from '../../../services/core/attacks.ts';
import { initBackend } from '../../../services/core/backend.ts';
import { ClipModel } from '../../../services/core/clip.ts';
import { RandomStream } from '../../../services/core/rng.ts';
import { loadClipModelDir } from '../../../services/io/model-dir.ts';
import { fixtureDir, goldenPixels, readGolden } from './fixtures.ts';

export interface AttackBench {
  readonly model: Classifier;
  readonly x: tf.Tensor4D;
  readonly labels: readonly number[];
  readonly sampleIds: readonly number[];
  readonly classes: number;
  dispose(): void;
}

export async function attackBench(n = 8): Promise<AttackBench> {
  await initBackend('wasm');
  const dir = await loadClipModelDir(fixtureDir('tiny-clip-f32'));
  const golden = await readGolden('tiny-clip-f32');
  const clip = ClipModel.fromWeights(dir.config, dir.weights, { explicitTranspose: true });
  const s = dir.config.vision.imageSize;
  const per = s * s * 3;
  const pixels = new Float32Array(n * per);
  pixels.set((await goldenPixels('tiny-clip-f32', golden, s)).subarray(0, Math.min(n, golden.images.length) * per));
  const rng = RandomStream.of(12);
  for (let i = golden.images.length; i < n; i++) {
    const base = [0.2 + 0.6 * rng.uniform(), 0.2 + 0.6 * rng.uniform(), 0.2 + 0.6 * rng.uniform()];
    for (let j = 0; j < per; j++) pixels[i * per + j] = base[j % 3] + 0.15 * (2 * rng.uniform() - 1);
  }
  const x = tf.tensor4d(pixels, [n, s, s, 3]);
  const prompts = golden.texts.filter((t) => t.hasEndOfText).slice(-4).map((t) => t.inputIds);
  const text = clip.encodeTexts(prompts);
  const model: Classifier = (xx) => clip.logits(clip.encodeImages(xx), text);
  const labels = Array.from(tf.tidy(() => tf.argMax(model(x), 1).dataSync()));
  return {
    model,
    x,
    labels,
    sampleIds: Array.from({ length: n }, (_, i) => 100 + i),
    classes: prompts.length,
    dispose() {
      tf.dispose([x, text]);
      clip.dispose();
    },
  };
}

/** the model behind a quantiser to 1/255 whose gradient is zero: gradient masking by construction */
export const quantised =
  (model: Classifier): Classifier =>
  (x) =>
    model(tf.div(tf.round(tf.mul(x, 255)), 255) as tf.Tensor4D);

/** the model behind an identity whose gradient counts the backward passes through it */
export function countingGradients(model: Classifier): { model: Classifier; backward: () => number } {
  let calls = 0;
  const identity = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => ({
    value: tf.clone(args[0] as tf.Tensor4D),
    gradFunc: (dy: tf.Tensor) => {
      calls++;
      return dy;
    },
  }));
  return { model: (x) => model(identity(x) as tf.Tensor4D), backward: () => calls };
}

/** ‖xAdv − x‖∞ and the value range of xAdv */
export function deviation(xAdv: tf.Tensor, x: tf.Tensor): { linf: number; lo: number; hi: number } {
  const [linf, lo, hi] = tf.tidy(() => [tf.max(tf.abs(tf.sub(xAdv, x))).dataSync()[0], tf.min(xAdv).dataSync()[0], tf.max(xAdv).dataSync()[0]]);
  return { linf, lo, hi };
}

/** correctly classified samples at x */
export const correctAt = (bench: AttackBench, x: tf.Tensor4D, model: Classifier = bench.model): boolean[] => {
  const p = tf.tidy(() => tf.argMax(model(x), 1).dataSync());
  return bench.labels.map((y, i) => p[i] === y);
};
