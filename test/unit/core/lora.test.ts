import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../../services/core/backend.ts';
import { ClipModel } from '../../../services/core/clip.ts';
import { AdvclipError } from '../../../services/core/errors.ts';
import {
  defaultLoraConfig,
  initLora,
  loraScale,
  loraSites,
  peftKeyA,
  peftKeyB,
  trainableParameterCount,
  validateLoraConfig,
  type LoraConfig,
  type LoraWeights,
} from '../../../services/core/lora.ts';
import { archConfig } from '../../../services/core/presets.ts';
import { AdapterTensors } from '../../../services/core/shard.ts';
import type { HostTensor } from '../../../services/core/tensor.ts';
import { bitwiseEqual, maxAbsDiff, maxAbs } from './numeric.ts';
import { colourTask, tinyConfig, tinySpec, tinyWeights } from './tiny-task.ts';

let model: ClipModel;
const weights = tinyWeights(3);
const task = colourTask(4);

before(async () => {
  await initBackend('wasm');
  model = ClipModel.fromWeights(tinyConfig, weights, { explicitTranspose: true });
});
after(() => model.dispose());

const isInvalid = (pattern: RegExp) => (e: unknown) => e instanceof AdvclipError && e.code === 'INVALID_ARGUMENT' && pattern.test(e.message);

describe('sites and parameter count', () => {
  test('ViT-B/16 and ViT-B/32 with the defaults (r 2, q,k,v of both towers) train 184,320 parameters', () => {
    for (const arch of ['vit-b-16', 'vit-b-32']) {
      const sites = loraSites(archConfig(arch), defaultLoraConfig);
      assert.equal(sites.length, 72, `${arch}: 12 + 12 layers × q,k,v`);
      assert.equal(trainableParameterCount(sites, 2), 184320, arch);
      const lora = initLora(archConfig(arch), defaultLoraConfig, 1);
      const total = [...lora.a, ...lora.b].reduce((n, t) => n + t.data.length, 0);
      assert.equal(total, 184320, `${arch}: the initialised factors hold that many values`);
    }
  });

  test('layer, target and tower selection; fixed order (vision first, by layer, then target order); dims', () => {
    const c = validateLoraConfig({ ...defaultLoraConfig, targets: ['fc2', 'v_proj', 'fc1'], layers: [1, 0] });
    const sites = loraSites(tinyConfig, c);
    assert.deepEqual(
      sites.map((s) => s.key),
      [
        'vision_model.encoder.layers.1.self_attn.v_proj',
        'vision_model.encoder.layers.1.mlp.fc1',
        'vision_model.encoder.layers.1.mlp.fc2',
        'vision_model.encoder.layers.0.self_attn.v_proj',
        'vision_model.encoder.layers.0.mlp.fc1',
        'vision_model.encoder.layers.0.mlp.fc2',
        'text_model.encoder.layers.1.self_attn.v_proj',
        'text_model.encoder.layers.1.mlp.fc1',
        'text_model.encoder.layers.1.mlp.fc2',
        'text_model.encoder.layers.0.self_attn.v_proj',
        'text_model.encoder.layers.0.mlp.fc1',
        'text_model.encoder.layers.0.mlp.fc2',
      ],
    );
    const fc1 = sites.find((s) => s.key.endsWith('1.mlp.fc1'))!;
    assert.deepEqual([fc1.inDim, fc1.outDim], [32, 64]);
    const fc2 = sites.find((s) => s.key.endsWith('1.mlp.fc2'))!;
    assert.deepEqual([fc2.inDim, fc2.outDim], [64, 32]);
    const textOnly = loraSites(tinyConfig, { ...defaultLoraConfig, towers: ['text'], targets: ['out_proj'] });
    assert.deepEqual(textOnly.map((s) => s.key), ['text_model.encoder.layers.0.self_attn.out_proj', 'text_model.encoder.layers.1.self_attn.out_proj']);
    assert.equal(peftKeyA(textOnly[0]), 'base_model.model.text_model.encoder.layers.0.self_attn.out_proj.lora_A.weight');
    assert.equal(peftKeyB(textOnly[0]), 'base_model.model.text_model.encoder.layers.0.self_attn.out_proj.lora_B.weight');
    assert.throws(() => loraSites(tinyConfig, { ...defaultLoraConfig, layers: [2] }), isInvalid(/layer 2 does not exist/));
    assert.throws(() => loraSites(tinyConfig, { ...defaultLoraConfig, layers: [-1] }), isInvalid(/layer -1/));
  });

  test('invalid configurations are typed errors naming the problem', () => {
    const bad: [Partial<LoraConfig>, RegExp][] = [
      [{ rank: 0 }, /rank/],
      [{ rank: 1.5 }, /rank/],
      [{ alpha: 0 }, /alpha/],
      [{ dropout: 1 }, /dropout/],
      [{ dropout: -0.1 }, /dropout/],
      [{ targets: [] }, /target/],
      [{ targets: ['qkv' as never] }, /unknown LoRA target "qkv"/],
      [{ towers: ['audio' as never] }, /unknown tower "audio"/],
    ];
    for (const [override, pattern] of bad) {
      assert.throws(() => validateLoraConfig({ ...defaultLoraConfig, ...override }), isInvalid(pattern), JSON.stringify(override));
      assert.throws(() => initLora(tinyConfig, { ...defaultLoraConfig, ...override }, 1), isInvalid(pattern), JSON.stringify(override));
    }
    const ok = validateLoraConfig({ ...defaultLoraConfig, dropout: 0 });
    assert.ok(Object.isFrozen(ok));
  });
});

describe('scale', () => {
  test('s = α/r, or α/√r with rslora', () => {
    assert.equal(loraScale(defaultLoraConfig), 0.5);
    assert.equal(loraScale({ ...defaultLoraConfig, rank: 4, alpha: 2 }), 0.5);
    assert.equal(loraScale({ ...defaultLoraConfig, rank: 4, alpha: 2, rslora: true }), 1);
    assert.equal(loraScale({ ...defaultLoraConfig, rank: 2, alpha: 1, rslora: true }), 1 / Math.SQRT2);
    assert.equal(new AdapterTensors(initLora(tinyConfig, { ...defaultLoraConfig, rank: 4, alpha: 2, rslora: true }, 1)).scale, 1);
  });
});

describe('initialisation', () => {
  test('B = 0 and A is kaiming-uniform (bound 1/√in) or gaussian (σ = 1/r)', () => {
    const lora = initLora(tinyConfig, defaultLoraConfig, 7);
    lora.b.forEach((b) => assert.ok(b.data.every((v) => v === 0)));
    lora.sites.forEach((s, i) => {
      assert.deepEqual(lora.a[i].shape, [2, s.inDim]);
      assert.deepEqual(lora.b[i].shape, [s.outDim, 2]);
      const bound = 1 / Math.sqrt(s.inDim);
      assert.ok(maxAbs(lora.a[i].data) <= bound && maxAbs(lora.a[i].data) > 0.8 * bound, s.key);
    });
    const wide = initLora(archConfig('vit-b-32'), { ...defaultLoraConfig, init: 'gaussian', rank: 4 }, 7);
    const all = wide.a.flatMap((t) => Array.from(t.data));
    const mean = all.reduce((s, v) => s + v, 0) / all.length;
    const std = Math.sqrt(all.reduce((s, v) => s + (v - mean) ** 2, 0) / all.length);
    assert.ok(Math.abs(mean) < 0.01 && Math.abs(std - 0.25) < 0.01, `mean ${mean}, std ${std}`);
  });

  test('A depends only on the seed and the LoRA configuration, not on the other training flags', () => {
    const base = tinySpec();
    const variants = [
      tinySpec({ method: 'clip-lora' }),
      tinySpec({ epsilon: 1 / 255, tau: 5, deltaStep: 'grad', lrDelta: 0.3 }),
      tinySpec({ optimizer: 'adamw', lr: 2e-4, schedule: 'cosine', weightDecay: 1e-2, iters: 500 }),
      tinySpec({ batchSize: 32, chunkSize: 4, augment: 'crop-flip', perturbation: 'per-sample', sync: 'local-delta' }),
    ];
    const a = (spec: typeof base) => initLora(tinyConfig, spec.lora, spec.seed).a;
    for (const v of variants) a(v).forEach((t, i) => assert.ok(bitwiseEqual(t.data, a(base)[i].data), `A[${i}]`));
    const reseeded = a(tinySpec({ seed: 2 }));
    reseeded.forEach((t, i) => assert.ok(maxAbsDiff(t.data, a(base)[i].data) > 0, `another seed changes A[${i}]`));
    const lowRank = initLora(tinyConfig, { ...base.lora, rank: 3 }, base.seed);
    assert.deepEqual(lowRank.a[0].shape, [3, 32]);
    assert.ok(!bitwiseEqual(lowRank.a[0].data.subarray(0, 64), a(base)[0].data), 'another rank draws another A');
  });

  test("a site's A does not depend on which other sites are adapted, nor on α, scaling or dropout", () => {
    const all = initLora(tinyConfig, defaultLoraConfig, 4);
    const some = initLora(tinyConfig, { ...defaultLoraConfig, targets: ['v_proj'], towers: ['text'], layers: [1], alpha: 16, rslora: true, dropout: 0.5 }, 4);
    assert.equal(some.sites.length, 1);
    const i = all.sites.findIndex((s) => s.key === some.sites[0].key);
    assert.ok(bitwiseEqual(some.a[0].data, all.a[i].data));
  });
});

/** The HF weights with each adapted linear merged: W = W0 + s·B·A. */
function merged(lora: LoraWeights, scale: number): Map<string, HostTensor> {
  const out = new Map(weights);
  lora.sites.forEach((s, i) => {
    const name = `${s.key}.weight`;
    const w0 = weights.get(name)!;
    const data = Float32Array.from(w0.data);
    const [a, b, r] = [lora.a[i].data, lora.b[i].data, lora.config.rank];
    for (let o = 0; o < s.outDim; o++) for (let j = 0; j < s.inDim; j++) {
      let ba = 0;
      for (let k = 0; k < r; k++) ba += b[o * r + k] * a[k * s.inDim + j];
      data[o * s.inDim + j] += scale * ba;
    }
    out.set(name, { shape: w0.shape, data });
  });
  return out;
}

function randomB(lora: LoraWeights, seed: number): LoraWeights {
  return { ...lora, b: lora.b.map((t, i) => ({ shape: t.shape, data: tf.tidy(() => tf.randomNormal([t.data.length], 0, 0.2, 'float32', seed + i).dataSync() as Float32Array) })) };
}

describe('the adapted forward pass', () => {
  const features = (m: ClipModel, adapters: Parameters<ClipModel['encodeImages']>[1]) =>
    tf.tidy(() => {
      const x = tf.tensor4d(task.pixels, [4, task.size, task.size, 3]);
      // the dropout plan has one group per image; the prompts go without
      const textAdapters = adapters && { ...adapters, dropout: null };
      return [m.encodeImages(x, adapters).dataSync() as Float32Array, m.encodeTexts(task.prompts, textAdapters).dataSync() as Float32Array];
    });

  test('B = 0 at init: the adapted model equals the frozen one exactly, with or without LoRA dropout', () => {
    const lora = initLora(tinyConfig, { ...defaultLoraConfig, targets: ['q_proj', 'k_proj', 'v_proj', 'out_proj', 'fc1', 'fc2'] }, 1);
    const tensors = new AdapterTensors(lora);
    const frozen = features(model, null);
    for (const dropout of [null, { p: 0.25, groups: [0, 1, 2, 3].map((s) => [9, s]) }]) {
      const [img, txt] = features(model, tensors.adapters(dropout));
      assert.ok(img.every((v, i) => v === frozen[0][i]), 'image features');
      assert.ok(txt.every((v, i) => v === frozen[1][i]), 'text features');
    }
    tensors.dispose();
  });

  for (const rslora of [false, true]) {
    test(`W0 + s·B·A: adapted equals merged weights (rank 3, α 2, rslora ${rslora})`, () => {
      const config = { ...defaultLoraConfig, rank: 3, alpha: 2, rslora, targets: ['q_proj', 'v_proj', 'fc1'] as const, dropout: 0 };
      const lora = randomB(initLora(tinyConfig, { ...config, targets: [...config.targets] }, 2), 40);
      const tensors = new AdapterTensors(lora);
      const [img, txt] = features(model, tensors.adapters(null));
      const mergedModel = ClipModel.fromWeights(tinyConfig, merged(lora, loraScale(lora.config)), { explicitTranspose: true });
      const [mImg, mTxt] = features(mergedModel, null);
      const [fImg] = features(model, null);
      assert.ok(maxAbsDiff(img, fImg) > 1e-2, 'the adapters do change the features');
      assert.ok(maxAbsDiff(img, mImg) <= 1e-5 * maxAbs(mImg), `image ${maxAbsDiff(img, mImg)}`);
      assert.ok(maxAbsDiff(txt, mTxt) <= 1e-5 * maxAbs(mTxt), `text ${maxAbsDiff(txt, mTxt)}`);
      mergedModel.dispose();
      tensors.dispose();
    });
  }

  test('LoRA dropout (B ≠ 0): keyed masks are reproducible and change the output; p = 0 is no dropout', () => {
    const lora = randomB(initLora(tinyConfig, defaultLoraConfig, 2), 50);
    const tensors = new AdapterTensors(lora);
    const plan = (salt: number) => ({ p: 0.25, groups: [0, 1, 2, 3].map((s) => [salt, s]) });
    const [a] = features(model, tensors.adapters(plan(1)));
    const [b] = features(model, tensors.adapters(plan(1)));
    const [c] = features(model, tensors.adapters(plan(2)));
    const [none] = features(model, tensors.adapters(null));
    const [zero] = features(model, tensors.adapters({ p: 0, groups: plan(1).groups }));
    assert.ok(bitwiseEqual(a, b), 'same keys, same masks');
    assert.ok(maxAbsDiff(a, c) > 0, 'other keys, other masks');
    assert.ok(maxAbsDiff(a, none) > 0, 'dropout changes the adapted output');
    assert.ok(bitwiseEqual(zero, none));
    tensors.dispose();
  });
});
