import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../../services/core/backend.ts';
import { ClipModel } from '../../../services/core/clip.ts';
import { hostTidy } from '../../../services/core/scope.ts';
import { loadClipModelDir } from '../../../services/io/model-dir.ts';
import { ADAMW_DEFAULTS, AdamWVariables } from '../../../scripts/pretrain/adamw.ts';
import { pretrainBatch } from '../../../scripts/pretrain/batches.ts';
import { SMALL_ARCH, pretrainClipConfig, type PretrainArch } from '../../../scripts/pretrain/config.ts';
import { clipLikeWeights } from '../../../scripts/pretrain/init.ts';
import { symmetricInfoNce } from '../../../scripts/pretrain/loss.ts';
import { DEFAULT_PRETRAIN_OPTIONS, pretrainOptionsFromArgs, writePretrainedModel } from '../../../scripts/pretrain/pretrain.ts';
import { corpusLoss, runPretraining, type RunOptions } from '../../../scripts/pretrain/run.ts';
import { warmupCosine } from '../../../scripts/pretrain/schedule.ts';
import { trainStep } from '../../../scripts/pretrain/train-step.ts';

const TINY: PretrainArch = {
  ...SMALL_ARCH, imageSize: 32, visionWidth: 32, visionLayers: 1, textWidth: 32, textLayers: 1, headWidth: 16, mlpRatio: 2, projectionDim: 16,
};

const tinyRun: RunOptions = {
  ...DEFAULT_PRETRAIN_OPTIONS,
  steps: 40, batch: 8, seed: 3, lr: 3e-3, warmup: 4, evalEvery: 0, logEvery: 10, tasks: [], arch: TINY, tokenizerCaptions: 2000,
};

before(async () => {
  await initBackend('wasm');
});

test('symmetric InfoNCE is ln B for uniform logits and small for a sharp diagonal', () => {
  hostTidy(() => {
    assert.ok(Math.abs(symmetricInfoNce(tf.zeros([4, 4])).dataSync()[0] - Math.log(4)) < 1e-6);
    const sharp = tf.mul(tf.eye(4), 50) as tf.Tensor2D;
    assert.ok(symmetricInfoNce(sharp).dataSync()[0] < 1e-6);
    // the two directions are averaged: rows are nearly right, column 0 is a tie (ln 2)
    const rowsOnly = tf.tensor2d([[10, 0], [10, 20]]);
    const expected = (2 * Math.log(1 + Math.exp(-10)) + Math.log(2) + Math.log(1 + Math.exp(-20))) / 4;
    assert.ok(Math.abs(symmetricInfoNce(rowsOnly).dataSync()[0] - expected) < 1e-4);
  });
});

test('warmup rises linearly to the peak, cosine falls to the floor', () => {
  const s = { peak: 1, warmup: 4, total: 20, floor: 0.1 };
  assert.deepEqual([0, 1, 2, 3].map((t) => warmupCosine(s, t)), [0.25, 0.5, 0.75, 1]);
  assert.equal(warmupCosine(s, 4), 1);
  assert.ok(Math.abs(warmupCosine(s, 19) - 0.1) < 1e-12);
});

test('command-line flags map onto the options; bad values name the flag', () => {
  const o = pretrainOptionsFromArgs(['--steps', '12', '--batch', '16', '--seed', '7', '--minutes', '2.5', '--data', '/nonexistent']);
  assert.ok(o !== 'help');
  assert.equal(o.steps, 12);
  assert.equal(o.batch, 16);
  assert.equal(o.seed, 7);
  assert.equal(o.minutes, 2.5);
  assert.deepEqual(o.tasks, []);
  assert.equal(pretrainOptionsFromArgs(['--help']), 'help');
  assert.throws(() => pretrainOptionsFromArgs(['--steps', '1.5']), /--steps must be an integer/);
});

test('a training step keeps the tensor count flat and logit_scale at most ln 100', () => {
  const config = pretrainClipConfig(TINY, { vocabSize: 300, bosTokenId: 298, eosTokenId: 299 });
  const weights = clipLikeWeights(config, 1);
  weights.set('logit_scale', { shape: [], data: Float32Array.of(Math.log(100) - 1e-4) });
  const model = ClipModel.fromWeights(config, weights, { explicitTranspose: true, trainable: true });
  const optimiser = new AdamWVariables(model.variables(), ADAMW_DEFAULTS);
  const batch = { pixels: new Float32Array(4 * 32 * 32 * 3).map((_, i) => (i % 97) / 97), shape: [4, 32, 32, 3] as [number, number, number, number], tokens: [[298, 5, 299], [298, 6, 7, 299], [298, 8, 299], [298, 9, 299]], captions: [] };
  trainStep(model, optimiser, batch, 1e-2);
  const count = tf.memory().numTensors;
  for (let i = 0; i < 3; i++) trainStep(model, optimiser, batch, 1e-2);
  assert.equal(tf.memory().numTensors, count);
  assert.ok(model.logitScaleVariable!.dataSync()[0] <= Math.log(100) + 1e-6);
  optimiser.dispose();
  model.dispose();
});

test('the same seed gives the same weights', async () => {
  const short = { ...tinyRun, steps: 3 };
  const a = await runPretraining(short, () => {});
  const wa = a.model.exportWeights();
  a.model.dispose();
  const b = await runPretraining(short, () => {});
  const wb = b.model.exportWeights();
  b.model.dispose();
  assert.deepEqual([...wa.keys()], [...wb.keys()]);
  for (const [name, t] of wa) assert.deepEqual(wb.get(name)!.data, t.data, name);
});

test('a tiny pretraining run lowers the contrastive loss and writes a directory the loader reads back with the same outputs', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'advclip-pretrain-'));
  try {
    const run = await runPretraining(tinyRun, () => {});
    // a held-out batch of the same corpus (steps 1000+ were never trained on)
    const initial = ClipModel.fromWeights(run.config, clipLikeWeights(run.config, tinyRun.seed), { explicitTranspose: true });
    const before = corpusLoss(initial, run.tokenizer, tinyRun.seed, 1000, 32, TINY);
    const after = corpusLoss(run.model, run.tokenizer, tinyRun.seed, 1000, 32, TINY);
    assert.ok(after < before - 0.1, `loss ${before.toFixed(3)} → ${after.toFixed(3)}`);
    assert.ok(run.lossCurve.at(-1)!.loss < run.lossCurve[0].loss);

    await writePretrainedModel(dir, run, 'F32');
    for (const f of ['config.json', 'model.safetensors', 'tokenizer.json', 'preprocessor_config.json', 'vocab.json', 'merges.txt']) {
      assert.ok(readdirSync(dir).includes(f), f);
    }
    const loaded = await loadClipModelDir(dir);
    assert.deepEqual(loaded.config, run.config);
    assert.equal(loaded.preprocess.cropSize, TINY.imageSize);
    const tokenizer = await loaded.loadTokenizer();
    const reread = ClipModel.fromWeights(loaded.config, loaded.weights, { explicitTranspose: true });
    const batch = pretrainBatch(tinyRun.seed, 2000, 4, TINY.imageSize, tokenizer, TINY.contextLength);
    assert.deepEqual(batch.tokens, pretrainBatch(tinyRun.seed, 2000, 4, TINY.imageSize, run.tokenizer, TINY.contextLength).tokens);
    const outputs = (m: ClipModel) => hostTidy(() => {
      const images = m.encodeImages(tf.tensor4d(batch.pixels, batch.shape));
      return Array.from(m.logits(images, m.encodeTexts(batch.tokens)).dataSync());
    });
    assert.deepEqual(outputs(reread), outputs(run.model));
    initial.dispose();
    reread.dispose();
    run.model.dispose();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
