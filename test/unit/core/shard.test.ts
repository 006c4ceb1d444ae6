import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { pgd } from '../../../services/core/attacks.ts';
import { initBackend } from '../../../services/core/backend.ts';
import { ClipModel } from '../../../services/core/clip.ts';
import { initLora } from '../../../services/core/lora.ts';
import { crossEntropyPerSample, oneHotLabels } from '../../../services/core/objective.ts';
import { AdapterTensors, ShardComputer, type RoundTask } from '../../../services/core/shard.ts';
import type { TrainSpec } from '../../../services/core/train-spec.ts';
import { colourTask, tinyConfig, tinySpec, tinyWeights } from './tiny-task.ts';

let model: ClipModel;
before(async () => {
  await initBackend('wasm');
  model = ClipModel.fromWeights(tinyConfig, tinyWeights(2), { explicitTranspose: true });
});
after(() => model.dispose());

const task = colourTask(8);
const samples = [1, 2, 5, 6];

/** the per-sample round's adversarial loss, Σ over the chunk */
async function roundLoss(spec: TrainSpec): Promise<number> {
  const adapter = new AdapterTensors(initLora(tinyConfig, spec.lora, spec.seed));
  const shard = new ShardComputer(model, spec, task.prompts, task.source);
  const round: RoundTask = { step: 5, round: 0, kind: 'lora', chunks: [{ index: 0, samples }], delta: null, textGrad: null };
  const result = await shard.compute(round, adapter, 0);
  shard.dispose();
  adapter.dispose();
  return result.chunks[0].advLossSum;
}

/** the same loss from the attacks' PGD, called directly with the training keys (seed, step, round, sample) */
async function pgdLoss(spec: TrainSpec): Promise<number> {
  const adapter = new AdapterTensors(initLora(tinyConfig, spec.lora, spec.seed));
  const adapters = adapter.adapters(null);
  const batch = await task.source(samples);
  const s = tinyConfig.vision.imageSize;
  const value = tf.tidy(() => {
    const x = tf.tensor4d(batch.pixels, [samples.length, s, s, 3]);
    const text = model.encodeTexts(task.prompts, adapters);
    const y = oneHotLabels(batch.labels, task.classes);
    const loss = (xx: tf.Tensor4D) => crossEntropyPerSample(model.logits(model.encodeImages(xx, adapters), text), y);
    const xAdv = pgd(loss, x, { epsilon: spec.epsilon, steps: spec.tau, stepSize: spec.lrDelta, stepRule: spec.deltaStep, randomStart: true, restarts: 1, startKeys: samples.map((i) => [spec.seed, 5, 0, i]) });
    return tf.sum(loss(xAdv)).dataSync()[0];
  });
  adapter.dispose();
  return value;
}

test('per-sample training runs the attacks’ PGD and honours --tau, --lr-delta and --delta-step', async (t) => {
  const variants = [
    { deltaStep: 'sign', lrDelta: 2 / 255, tau: 2 },
    { deltaStep: 'sign', lrDelta: 4 / 255, tau: 2 },
    { deltaStep: 'sign', lrDelta: 2 / 255, tau: 4 },
    { deltaStep: 'grad', lrDelta: 30, tau: 2 },
  ] as const;
  const losses: number[] = [];
  for (const v of variants) {
    const spec = tinySpec({ perturbation: 'per-sample', ...v });
    const [trained, direct] = [await roundLoss(spec), await pgdLoss(spec)];
    assert.ok(Math.abs(trained - direct) <= 1e-5 * Math.abs(direct), `${JSON.stringify(v)}: shard ${trained}, pgd ${direct}`);
    losses.push(trained);
  }
  t.diagnostic(`Σ adversarial CE: ${variants.map((v, i) => `${v.deltaStep} η ${v.lrDelta.toFixed(4)} τ ${v.tau}: ${losses[i].toFixed(5)}`).join('; ')}`);
  assert.equal(new Set(losses).size, losses.length, 'every flag changes the perturbation');
});
