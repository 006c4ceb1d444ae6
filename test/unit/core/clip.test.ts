import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../../services/core/backend.ts';
import { ClipModel, eosPosition, type Adapters } from '../../../services/core/clip.ts';
import { AdvclipError } from '../../../services/core/errors.ts';
import { FixtureNames, fixture, withModel, type Loaded } from './fixtures.ts';
import { centralDifference, flatten, maxAbs, probeIndices, relativeError } from './numeric.ts';

const PARITY = 1e-4;
const Transposes = [true, false] as const;

before(async () => {
  await initBackend('wasm');
});


const imagesOf = (f: Loaded): tf.Tensor4D => {
  const s = f.dir.config.vision.imageSize;
  return tf.tensor4d(f.pixels, [f.golden.images.length, s, s, 3]);
};

/** The texts our model pools: every golden text except those a first-EOS model rejects. */
const encodable = (f: Loaded) => f.golden.texts.map((t, i) => ({ ...t, i })).filter((t) => f.golden.poolingRule === 'argmax' || t.hasEndOfText);

for (const name of FixtureNames) {
  describe(`parity with the numpy HF reference: ${name}`, () => {
    for (const explicitTranspose of Transposes) {
      test(`image features, text features and logits (explicitTranspose ${explicitTranspose})`, async (t) => {
        const f = await fixture(name);
        const texts = encodable(f);
        assert.ok(texts.length >= (f.golden.poolingRule === 'argmax' ? 10 : 8), 'most golden texts are encodable');
        withModel(f, explicitTranspose, (model) => {
          assert.ok(Math.abs(model.logitScale - Math.exp(f.golden.logitScale)) <= 1e-5 * Math.exp(f.golden.logitScale), 'logit scale read from the checkpoint');
          tf.tidy(() => {
            const image = model.encodeImages(imagesOf(f));
            const imageErr = relativeError(image.dataSync(), flatten(f.golden.imageEmbeds));

            // each text alone (as the reference runs it), lengths 1..16
            const single = texts.map((x) => model.encodeTexts([x.inputIds]));
            const text = tf.concat(single, 0) as tf.Tensor2D;
            const textRef = flatten(texts.map((x) => f.golden.textEmbeds[x.i]));
            const textErr = relativeError(text.dataSync(), textRef);

            // all texts in one padded batch: padding after the end must not change any feature
            const batched = model.encodeTexts(texts.map((x) => x.inputIds));
            const batchErr = relativeError(batched.dataSync(), textRef);

            const logits = model.logits(image, text);
            const logitsRef = flatten(f.golden.logitsPerImage.map((row) => texts.map((x) => row[x.i])));
            const logitsErr = relativeError(logits.dataSync(), logitsRef);

            const lengths = [...new Set(texts.map((x) => x.inputIds.length))].sort((a, b) => a - b);
            t.diagnostic(`${name} T=${explicitTranspose}: image ${imageErr.toExponential(2)}, text ${textErr.toExponential(2)} (padded batch ${batchErr.toExponential(2)}), logits ${logitsErr.toExponential(2)}; lengths ${lengths.join(',')}`);
            assert.ok(lengths.length >= 5, `several sequence lengths (${lengths.join(',')})`);
            assert.ok(imageErr <= PARITY, `image features: ${imageErr}`);
            assert.ok(textErr <= PARITY, `text features: ${textErr}`);
            assert.ok(batchErr <= PARITY, `padded text batch: ${batchErr}`);
            assert.ok(logitsErr <= PARITY, `logits: ${logitsErr}`);
          });
        });
      });
    }

    test('pools where the reference pools', async () => {
      const f = await fixture(name);
      for (const x of encodable(f)) assert.equal(eosPosition(x.inputIds, f.golden.eosTokenId), x.pooledIndex, x.name);
    });
  });
}

/** Without <|endoftext|>, HF's first-EOS rule (argmax of an all-zero mask) pools at position 0; so do we. */
test("a sequence without <|endoftext|> pools at position 0, as HF", async (t) => {
  const f = await fixture('tiny-clip-f32');
  const missing = f.golden.texts.map((x, i) => ({ ...x, i })).filter((x) => !x.hasEndOfText);
  assert.ok(missing.length >= 2);
  withModel(f, true, (model) => {
    for (const x of missing) {
      const position = eosPosition(x.inputIds, f.golden.eosTokenId);
      assert.equal(position, 0, x.name);
      assert.equal(position, x.pooledIndex, x.name);
      const err = tf.tidy(() => relativeError(model.encodeTexts([x.inputIds]).dataSync(), f.golden.textEmbeds[x.i]));
      assert.ok(err <= PARITY, `${x.name}: ${err}`);
      t.diagnostic(`${x.name}: pooled at ${position} as HF, error ${err.toExponential(2)}`);
    }
  });
});

test('the argmax rule (eos_token_id 2) pools at the largest id, the first of equal ones', () => {
  assert.equal(eosPosition([5, 9, 3, 9, 1], 2), 1);
  assert.equal(eosPosition([7], 2), 0);
  assert.equal(eosPosition([5, 9, 3, 9, 1], 9), 1);
  assert.equal(eosPosition([5, 9, 3, 9, 1], 3), 2);
});

test('bad inputs are typed errors', async () => {
  const f = await fixture('tiny-clip-f32');
  withModel(f, true, (model) => {
    const isInvalid = (e: unknown) => e instanceof AdvclipError && e.code === 'INVALID_ARGUMENT';
    assert.throws(() => tf.tidy(() => model.encodeImages(tf.zeros([1, 16, 16, 3]) as tf.Tensor4D)), isInvalid);
    assert.throws(() => tf.tidy(() => model.encodeTexts([[613, f.dir.config.text.vocabSize, 614]])), isInvalid);
    assert.throws(() => tf.tidy(() => model.encodeTexts([Array(17).fill(614)])), isInvalid);
  });
});

/** LoRA factors on the text tower's q,k,v with random A and B (B ≠ 0, so both gradients are non-trivial). */
function textAdapters(model: ClipModel, rank: number): Map<string, { a: tf.Tensor2D; b: tf.Tensor2D }> {
  const d = model.config.text.hiddenSize;
  const factors = new Map<string, { a: tf.Tensor2D; b: tf.Tensor2D }>();
  for (let layer = 0; layer < model.config.text.numHiddenLayers; layer++) {
    for (const proj of ['q_proj', 'k_proj', 'v_proj']) {
      const seed = layer * 10 + proj.charCodeAt(0);
      factors.set(`text_model.encoder.layers.${layer}.self_attn.${proj}`, {
        a: tf.randomNormal([rank, d], 0, 0.3, 'float32', seed) as tf.Tensor2D,
        b: tf.randomNormal([d, rank], 0, 0.3, 'float32', seed + 1) as tf.Tensor2D,
      });
    }
  }
  return factors;
}

describe('gradients match central finite differences (float32)', () => {
  for (const explicitTranspose of Transposes) {
    test(`d Σ w⊙imageFeatures / d pixels (explicitTranspose ${explicitTranspose})`, async (t) => {
      const f = await fixture('tiny-clip-f32');
      withModel(f, explicitTranspose, (model) => {
        const s = model.config.vision.imageSize;
        const n = 2;
        const x = f.pixels.slice(0, n * s * s * 3);
        const w = tf.randomNormal([n, model.config.projectionDim], 0, 1, 'float32', 7);
        const objective = (px: tf.Tensor) => tf.sum(tf.mul(model.encodeImages(px as tf.Tensor4D), w)) as tf.Scalar;
        const grad = tf.tidy(() => tf.grad(objective)(tf.tensor4d(x, [n, s, s, 3])).dataSync() as Float32Array);
        const value = (px: Float32Array) => tf.tidy(() => objective(tf.tensor4d(px, [n, s, s, 3])).dataSync()[0]);
        const scale = maxAbs(grad);
        let worst = 0;
        for (const i of probeIndices(grad, 4)) {
          const fd = centralDifference(value, x, i, 1e-2);
          worst = Math.max(worst, Math.abs(fd - grad[i]) / scale);
          assert.ok(Math.abs(fd - grad[i]) <= 1e-2 * scale, `pixel ${i}: autodiff ${grad[i]}, fd ${fd}`);
        }
        t.diagnostic(`max |fd − grad| / max|grad| = ${worst.toExponential(2)}`);
        w.dispose();
      });
    });

    test(`d Σ w⊙textFeatures / d LoRA A, B (explicitTranspose ${explicitTranspose})`, async (t) => {
      const f = await fixture('tiny-clip-f32');
      withModel(f, explicitTranspose, (model) => {
        const factors = textAdapters(model, 2);
        const keys = [...factors.keys()];
        const sequences = f.golden.texts.filter((x) => x.hasEndOfText).slice(0, 4).map((x) => x.inputIds);
        const w = tf.randomNormal([sequences.length, model.config.projectionDim], 0, 1, 'float32', 11);
        const params = keys.flatMap((k) => [factors.get(k)!.a, factors.get(k)!.b]);
        const objective = (...ps: tf.Tensor[]) => {
          const override = new Map(keys.map((k, i) => [k, { a: ps[2 * i] as tf.Tensor2D, b: ps[2 * i + 1] as tf.Tensor2D }]));
          const adapters: Adapters = { scale: 0.5, factors: override, dropout: null };
          return tf.sum(tf.mul(model.encodeTexts(sequences, adapters), w)) as tf.Scalar;
        };
        const grads = tf.tidy(() => tf.grads(objective)(params).map((g) => g.dataSync() as Float32Array));
        let worst = 0;
        // probe A and B of the first and last adapted layer
        for (const p of [0, 1, params.length - 2, params.length - 1]) {
          const host = params[p].dataSync() as Float32Array;
          const value = (v: Float32Array) =>
            tf.tidy(() => objective(...params.map((q, j) => (j === p ? tf.tensor2d(v, q.shape as [number, number]) : q))).dataSync()[0]);
          const scale = maxAbs(grads[p]);
          assert.ok(scale > 0, `gradient of parameter ${p} is not zero`);
          for (const i of probeIndices(grads[p], 2, 1)) {
            const fd = centralDifference(value, Float32Array.from(host), i, 1e-2);
            worst = Math.max(worst, Math.abs(fd - grads[p][i]) / scale);
            assert.ok(Math.abs(fd - grads[p][i]) <= 1e-2 * scale, `param ${p}[${i}]: autodiff ${grads[p][i]}, fd ${fd}`);
          }
        }
        t.diagnostic(`max |fd − grad| / max|grad| = ${worst.toExponential(2)}`);
        for (const p of params) p.dispose();
        w.dispose();
      });
    });
  }

  test('both transpose settings give the same gradients', async () => {
    const f = await fixture('tiny-clip-f32');
    const gradFor = (explicitTranspose: boolean) =>
      withModel(f, explicitTranspose, (model) =>
        tf.tidy(() => {
          const s = model.config.vision.imageSize;
          const x = tf.tensor4d(f.pixels.slice(0, 2 * s * s * 3), [2, s, s, 3]);
          const text = model.encodeTexts([f.golden.texts[0].inputIds, f.golden.texts[7].inputIds]);
          return tf.grad((px: tf.Tensor) => tf.sum(tf.logSoftmax(model.logits(model.encodeImages(px as tf.Tensor4D), text))))(x).dataSync() as Float32Array;
        }),
      );
    const a = gradFor(true);
    const b = gradFor(false);
    assert.ok(relativeError(a, b) <= 1e-4, `relative difference ${relativeError(a, b)}`);
  });
});

test('numTensors is flat across repeated forward + backward passes', async () => {
  const f = await fixture('tiny-clip-f32');
  for (const explicitTranspose of Transposes) {
    withModel(f, explicitTranspose, (model) => {
      const factors = textAdapters(model, 2);
      const adapters: Adapters = { scale: 0.5, factors, dropout: null };
      const keys = [...factors.keys()];
      const s = model.config.vision.imageSize;
      const x = tf.tensor4d(f.pixels, [f.golden.images.length, s, s, 3]);
      const ids = f.golden.texts.filter((t) => t.hasEndOfText).map((t) => t.inputIds);
      const pass = () =>
        tf.tidy(() => {
          const loss = (px: tf.Tensor, ...ps: tf.Tensor[]) => {
            const override = new Map(keys.map((k, i) => [k, { a: ps[2 * i] as tf.Tensor2D, b: ps[2 * i + 1] as tf.Tensor2D }]));
            const text = model.encodeTexts(ids, { ...adapters, factors: override });
            return tf.sum(tf.logSoftmax(model.logits(model.encodeImages(px as tf.Tensor4D), text))) as tf.Scalar;
          };
          const grads = tf.grads(loss)([x, ...keys.flatMap((k) => [factors.get(k)!.a, factors.get(k)!.b])]);
          return grads.reduce((acc, g) => acc + tf.sum(tf.abs(g)).dataSync()[0], 0);
        });
      const first = pass();
      const baseline = tf.memory().numTensors;
      for (let i = 0; i < 5; i++) {
        assert.equal(pass(), first, 'repeated passes give the same numbers');
        assert.equal(tf.memory().numTensors, baseline, `numTensors after pass ${i + 2}`);
      }
      x.dispose();
      for (const { a, b } of factors.values()) tf.dispose([a, b]);
    });
  }
});
