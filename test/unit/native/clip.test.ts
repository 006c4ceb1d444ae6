/**
 * CLIP on the native products: the same features as the numpy HF reference,
 * with tfjs' own transposed-product gradients (explicitTranspose off, what
 * `native` runs) giving the LoRA gradients the wasm path gives.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../../services/core/backend.ts';
import type { Adapters } from '../../../services/core/clip.ts';
import { installNativeKernels } from '../../../services/core/native-kernels.ts';
import { explicitTransposeFor } from '../../../services/run/backend.ts';
import { FixtureNames, fixture, fixtureDir, readGolden, withModel } from '../core/fixtures.ts';
import { flatten, relativeError } from '../core/numeric.ts';
import { maxAbs, maxAbsDiff, runCli } from '../../helpers/cli.ts';
import { addon, skip } from './addon.ts';

const PARITY = 1e-4;

let restore: (() => void) | null = null;
before(async () => {
  await initBackend('wasm');
});
after(() => restore?.());

function native<T>(f: () => T): T {
  restore = installNativeKernels(addon!);
  try {
    return f();
  } finally {
    restore();
    restore = null;
  }
}


describe('CLIP parity with the numpy HF reference on native products', { skip }, () => {
  for (const name of FixtureNames) {
    for (const explicitTranspose of [false, true]) {
      test(`${name}: image, text features and logits (explicitTranspose ${explicitTranspose})`, async (t) => {
        const f = await fixture(name);
        const texts = f.golden.texts.map((x, i) => ({ ...x, i })).filter((x) => f.golden.poolingRule === 'argmax' || x.hasEndOfText);
        const s = f.dir.config.vision.imageSize;
        const errs = native(() =>
          withModel(f, explicitTranspose, (model) =>
            tf.tidy(() => {
              const image = model.encodeImages(tf.tensor4d(f.pixels, [f.golden.images.length, s, s, 3]));
              const text = tf.concat(texts.map((x) => model.encodeTexts([x.inputIds])), 0) as tf.Tensor2D;
              const logits = model.logits(image, text);
              return {
                image: relativeError(image.dataSync(), flatten(f.golden.imageEmbeds)),
                text: relativeError(text.dataSync(), flatten(texts.map((x) => f.golden.textEmbeds[x.i]))),
                logits: relativeError(logits.dataSync(), flatten(f.golden.logitsPerImage.map((row) => texts.map((x) => row[x.i])))),
              };
            }),
          ),
        );
        t.diagnostic(`image ${errs.image.toExponential(2)}, text ${errs.text.toExponential(2)}, logits ${errs.logits.toExponential(2)}`);
        assert.ok(errs.image <= PARITY, `image features: ${errs.image}`);
        assert.ok(errs.text <= PARITY, `text features: ${errs.text}`);
        assert.ok(errs.logits <= PARITY, `logits: ${errs.logits}`);
      });
    }
  }
});

describe('LoRA gradients: native with tfjs gradients = wasm with plain-product gradients', { skip }, () => {
  test('d Σ w⊙logits / d (pixels, text LoRA A and B) on tiny-clip-f32', async () => {
    const f = await fixture('tiny-clip-f32');
    const s = f.dir.config.vision.imageSize;
    const d = f.dir.config.text.hiddenSize;
    const sites = [0, f.dir.config.text.numHiddenLayers - 1].flatMap((l) => ['q_proj', 'v_proj'].map((p) => `text_model.encoder.layers.${l}.self_attn.${p}`));
    const params = sites.flatMap((_, i) => [tf.randomNormal([2, d], 0, 0.3, 'float32', 40 + i), tf.randomNormal([d, 2], 0, 0.3, 'float32', 60 + i)]);
    const pixels = tf.tensor4d(f.pixels, [f.golden.images.length, s, s, 3]);
    const sequences = f.golden.texts.filter((x) => x.hasEndOfText).slice(0, 4).map((x) => x.inputIds);
    const grads = (explicitTranspose: boolean) =>
      withModel(f, explicitTranspose, (model) =>
        tf.tidy(() => {
          const w = tf.randomNormal([f.golden.images.length, sequences.length], 0, 1, 'float32', 9);
          const objective = (px: tf.Tensor, ...ps: tf.Tensor[]) => {
            const factors = new Map(sites.map((site, i) => [site, { a: ps[2 * i] as tf.Tensor2D, b: ps[2 * i + 1] as tf.Tensor2D }]));
            const adapters: Adapters = { scale: 0.5, factors, dropout: null };
            const logits = model.logits(model.encodeImages(px as tf.Tensor4D), model.encodeTexts(sequences, adapters));
            return tf.sum(tf.mul(logits, w)) as tf.Scalar;
          };
          return tf.grads(objective)([pixels, ...params]).map((g) => g.dataSync() as Float32Array);
        }),
      );
    const reference = grads(true);
    const ours = native(() => grads(false));
    reference.forEach((ref, i) => {
      const err = relativeError(ours[i], ref);
      assert.ok(err <= PARITY, `gradient ${i === 0 ? 'of the pixels' : `of LoRA ${i % 2 ? 'A' : 'B'} #${Math.floor((i - 1) / 2)}`}: ${err}`);
    });
    tf.dispose([pixels, ...params]);
  });
});

describe('the native backend as a user picks it', { skip }, () => {
  test('explicitTransposeFor: native keeps tfjs gradients, wasm and cpu use plain products', () => {
    assert.equal(explicitTransposeFor({ name: 'native', tfName: 'wasm', skipped: [] }), false);
    assert.equal(explicitTransposeFor({ name: 'wasm', tfName: 'wasm', skipped: [] }), true);
    assert.equal(explicitTransposeFor({ name: 'cpu', tfName: 'cpu', skipped: [] }), true);
    assert.equal(explicitTransposeFor({ name: 'node', tfName: 'tensorflow', skipped: [] }), false);
  });

  test('`advclip embed --backend native` equals the reference and logs its backend', async () => {
    const dir = fixtureDir('tiny-clip-f32');
    const golden = await readGolden('tiny-clip-f32');
    const pngs = golden.images.map((img, i) => ({ i, png: img.png })).filter((x): x is { i: number; png: string } => !!x.png);
    const texts = golden.texts.filter((x) => x.hasEndOfText);
    const args = ['embed', '--backend', 'native', '--model', dir, ...pngs.flatMap((p) => ['--image', `${dir}${p.png}`]), ...texts.flatMap((x) => ['--input-ids', x.inputIds.join(',')]), '--json'];
    const r = await runCli(args);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /backend native/);
    const out = JSON.parse(r.stdout) as { image_embeds: number[][]; text_embeds: number[][] };
    const imageRef = pngs.map((p) => golden.imageEmbeds[p.i]);
    const textRef = texts.map((x) => golden.textEmbeds[golden.texts.indexOf(x)]);
    assert.ok(maxAbsDiff(out.image_embeds, imageRef) / maxAbs(imageRef) <= PARITY);
    assert.ok(maxAbsDiff(out.text_embeds, textRef) / maxAbs(textRef) <= PARITY);
  });
});
