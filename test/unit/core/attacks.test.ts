import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { evalStartKeys, fgsm, onStillRobust, onStillRobustBatched, pgd, universalPgd, type PerSampleLoss, type PgdOptions } from '../../../services/core/attacks.ts';
import { initBackend } from '../../../services/core/backend.ts';
import { ClipModel } from '../../../services/core/clip.ts';
import { attackSpec, evaluateBatch, type AttackSpec } from '../../../services/core/evaluate.ts';
import { crossEntropyPerSample, oneHotLabels } from '../../../services/core/objective.ts';
import { RandomStream } from '../../../services/core/rng.ts';
import { loadClipModelDir } from '../../../services/io/model-dir.ts';
import { fixtureDir, goldenPixels, readGolden } from './fixtures.ts';
import { bitwiseEqual, centralDifference, maxAbs, maxAbsDiff, probeIndices } from './numeric.ts';

/**
 * The f32 fixture model (logit scale 10: the loss is not saturated) as a
 * classifier over four golden texts, on smooth random images and the golden
 * ones, labelled with the model's own clean predictions: clean accuracy 100%.
 */
let model: ClipModel;
let text: tf.Tensor2D;
let x: tf.Tensor4D;
let y: tf.Tensor2D;
let labels: number[];
let loss: PerSampleLoss;
const N = 8;
const sampleIds = Array.from({ length: N }, (_, i) => 100 + i);

before(async () => {
  await initBackend('wasm');
  const dir = await loadClipModelDir(fixtureDir('tiny-clip-f32'));
  const golden = await readGolden('tiny-clip-f32');
  model = ClipModel.fromWeights(dir.config, dir.weights, { explicitTranspose: true });
  const s = dir.config.vision.imageSize;
  const per = s * s * 3;
  const pixels = new Float32Array(N * per);
  pixels.set(await goldenPixels('tiny-clip-f32', golden, s));
  const rng = RandomStream.of(12);
  for (let i = golden.images.length; i < N; i++) {
    const base = [0.2 + 0.6 * rng.uniform(), 0.2 + 0.6 * rng.uniform(), 0.2 + 0.6 * rng.uniform()];
    for (let j = 0; j < per; j++) pixels[i * per + j] = base[j % 3] + 0.15 * (2 * rng.uniform() - 1);
  }
  x = tf.tensor4d(pixels, [N, s, s, 3]);
  const prompts = golden.texts.filter((t) => t.hasEndOfText).slice(-4).map((t) => t.inputIds);
  text = model.encodeTexts(prompts);
  labels = Array.from(tf.tidy(() => tf.argMax(model.logits(model.encodeImages(x), text), 1).dataSync()));
  y = oneHotLabels(labels, prompts.length);
  loss = (xx) => crossEntropyPerSample(model.logits(model.encodeImages(xx), text), y);
});
after(() => {
  tf.dispose([text, x, y]);
  model.dispose();
});

const meanLoss = (xx: tf.Tensor4D) => tf.tidy(() => tf.mean(loss(xx)).dataSync()[0]);
const pgdOpts = (epsilon: number, over: Partial<PgdOptions> & { seed?: number } = {}): PgdOptions => ({ epsilon, steps: 10, randomStart: true, restarts: 1, startKeys: evalStartKeys(over.seed ?? 1, sampleIds), ...over });

function assertInBall(xAdv: tf.Tensor, eps: number, what: string) {
  const [dev, lo, hi] = tf.tidy(() => [tf.max(tf.abs(tf.sub(xAdv, x))).dataSync()[0], tf.min(xAdv).dataSync()[0], tf.max(xAdv).dataSync()[0]]);
  assert.ok(dev <= eps + 1e-6, `${what}: ‖x_adv − x‖∞ = ${dev} > ε = ${eps}`);
  assert.ok(lo >= 0 && hi <= 1, `${what}: values in [${lo}, ${hi}]`);
  return dev;
}

describe('attacks stay in the ε-ball and in [0,1]', () => {
  for (const eps of [1 / 255, 8 / 255, 0.3]) {
    test(`ε = ${eps.toFixed(4)}`, () => {
      const a = fgsm(loss, x, eps);
      const dev = assertInBall(a, eps, 'FGSM');
      assert.ok(dev >= eps - 1e-6, 'FGSM takes the full step');
      const p = pgd(loss, x, pgdOpts(eps, { steps: 3, restarts: 2 }));
      assertInBall(p, eps, 'PGD');
      const delta = universalPgd(loss, x, { epsilon: eps, steps: 3, randomStart: true, seed: 1 });
      assert.deepEqual(delta.shape, x.shape.slice(1));
      assert.ok(tf.tidy(() => tf.max(tf.abs(delta)).dataSync()[0]) <= eps + 1e-6, 'universal δ');
      const u = tf.clipByValue(tf.add(x, delta), 0, 1);
      assertInBall(u, eps, 'universal');
      tf.dispose([a, p, delta, u]);
    });
  }
});

test('mean loss: PGD ≥ FGSM ≥ clean, on the same samples', (t) => {
  const eps = 2 / 255;
  const clean = meanLoss(x);
  const a = fgsm(loss, x, eps);
  const p = pgd(loss, x, pgdOpts(eps));
  const u = universalPgd(loss, x, { epsilon: eps, steps: 10, randomStart: false, seed: 1 });
  const [lf, lp] = [meanLoss(a), meanLoss(p)];
  const lu = tf.tidy(() => meanLoss(tf.clipByValue(tf.add(x, u), 0, 1) as tf.Tensor4D));
  t.diagnostic(`clean ${clean.toFixed(4)}, FGSM ${lf.toFixed(4)}, PGD-10 ${lp.toFixed(4)}, universal PGD-10 ${lu.toFixed(4)}`);
  assert.ok(clean > 0.01, 'the clean loss is not saturated');
  assert.ok(lf > clean, 'FGSM raises the loss');
  assert.ok(lp >= lf, 'PGD ≥ FGSM');
  assert.ok(lu > clean && lu <= lp, 'one δ for all samples: above clean, below per-sample PGD');
  tf.dispose([a, p, u]);
});

test('attack success does not decrease with ε', (t) => {
  const spec = (attack: AttackSpec['attack'], epsilon: number): AttackSpec => attackSpec({ attack, epsilon, steps: 10, seed: 3 });
  const rows: string[] = [];
  for (const attack of ['fgsm', 'pgd'] as const) {
    const accuracy = [0, 0.25 / 255, 0.5 / 255, 2 / 255, 8 / 255, 32 / 255].map((eps) => evaluateBatch(model, null, text, x, labels, sampleIds, spec(attack, eps)).correct / N);
    rows.push(`${attack}: ${accuracy.join(' ')}`);
    assert.equal(accuracy[0], 1, 'clean accuracy 100% (labels are the clean predictions)');
    for (let i = 1; i < accuracy.length; i++) assert.ok(accuracy[i] <= accuracy[i - 1], `${attack}: accuracy ${accuracy.join(', ')}`);
    assert.ok(accuracy[5] < 1, `${attack} at 32/255 flips some prediction`);
  }
  const none = evaluateBatch(model, null, text, x, labels, sampleIds, spec('none', 8 / 255));
  assert.equal(none.correct, N);
  t.diagnostic(`accuracy at ε = 0, ¼, ½, 2, 8, 32 /255 — ${rows.join('; ')}`);
});

test('the input gradient matches finite differences, and FGSM steps along its sign', (t) => {
  const s = x.shape[1];
  const n = 2;
  const x0 = tf.tidy(() => tf.slice(x, [0, 0, 0, 0], [n, s, s, 3]).dataSync() as Float32Array);
  const y0 = tf.slice(y, [0, 0], [n, -1]) as tf.Tensor2D;
  const l = (xx: tf.Tensor4D) => crossEntropyPerSample(model.logits(model.encodeImages(xx), text), y0);
  const sum = (v: Float32Array) => tf.tidy(() => tf.sum(l(tf.tensor4d(v, [n, s, s, 3]))).dataSync()[0]);
  const g = tf.tidy(() => tf.grad((xx: tf.Tensor) => tf.sum(l(xx as tf.Tensor4D)))(tf.tensor4d(x0, [n, s, s, 3])).dataSync() as Float32Array);
  const eps = 1 / 255;
  const step = tf.tidy(() => tf.sub(fgsm(l, tf.tensor4d(x0, [n, s, s, 3]), eps), tf.tensor4d(x0, [n, s, s, 3])).dataSync() as Float32Array);
  let worst = 0;
  for (const i of probeIndices(g, 5)) {
    const fd = centralDifference(sum, Float32Array.from(x0), i, 1e-2);
    worst = Math.max(worst, Math.abs(fd - g[i]) / maxAbs(g));
    assert.ok(Math.abs(fd - g[i]) <= 1e-2 * maxAbs(g), `pixel ${i}: grad ${g[i]}, fd ${fd}`);
    if (Math.abs(fd) > 0.1 * maxAbs(g) && x0[i] > eps && x0[i] < 1 - eps) assert.ok(Math.abs(step[i] - eps * Math.sign(fd)) < 1e-6, `FGSM step at ${i}`);
  }
  t.diagnostic(`max |fd − grad| / max|grad| = ${worst.toExponential(2)}`);
  y0.dispose();
});

test('restarts keep the per-sample worst case', () => {
  const eps = 8 / 255;
  const perSample = (restarts: number) => {
    const p = pgd(loss, x, pgdOpts(eps, { steps: 1, restarts }));
    const l = tf.tidy(() => Array.from(loss(p).dataSync()));
    p.dispose();
    return l;
  };
  const [one, two, four] = [perSample(1), perSample(2), perSample(4)];
  one.forEach((v, i) => assert.ok(two[i] >= v && four[i] >= two[i], `sample ${i}: ${v}, ${two[i]}, ${four[i]}`));
  assert.ok(four.some((v, i) => v > one[i]), 'a later restart wins somewhere');
});

test('attacks are deterministic for a seed; the random start depends on it', () => {
  const eps = 8 / 255;
  const run = (seed: number) => {
    const p = pgd(loss, x, pgdOpts(eps, { steps: 2, restarts: 2, seed }));
    const data = p.dataSync() as Float32Array;
    p.dispose();
    return data;
  };
  const memory = tf.memory().numTensors;
  const a = run(1);
  assert.ok(bitwiseEqual(a, run(1)));
  assert.ok(maxAbsDiff(a, run(2)) > 0);
  const u = (seed: number) => {
    const d = universalPgd(loss, x, { epsilon: eps, steps: 2, randomStart: true, seed });
    const data = d.dataSync() as Float32Array;
    d.dispose();
    return data;
  };
  assert.ok(bitwiseEqual(u(5), u(5)));
  assert.ok(maxAbsDiff(u(5), u(6)) > 0);
  assert.equal(tf.memory().numTensors, memory, 'attacks leave no tensors behind');
});

test('attempts side by side (onStillRobustBatched) give what they give one after another (onStillRobust), in fewer calls', () => {
  // attempt a fools row i when (i + a) % 3 === 0 and moves it to a value naming the attempt; each row independent of the rest
  const x = tf.tensor4d(Float32Array.from({ length: 7 }, (_, i) => i), [7, 1, 1, 1]);
  const fools = (a: number, row: number) => (row + a) % 3 === 0 && row !== 5;
  const point = (a: number, row: number) => 100 * (a + 1) + row;
  const one = (a: number, rows: readonly number[]) => ({ xAdv: tf.tensor4d(rows.map((r) => point(a, r)), [rows.length, 1, 1, 1]), fooled: rows.map((r) => fools(a, r)) });
  let sequentialCalls = 0;
  const sequential = onStillRobust(x, 4, (a, rows) => (sequentialCalls++, one(a, rows)));
  for (const maxRows of [1, 5, 14, 64]) {
    let calls = 0;
    const batched = onStillRobustBatched(x, 4, maxRows, (items) => {
      calls++;
      return {
        xAdv: tf.tensor4d(items.map((it) => point(it.a, it.row)), [items.length, 1, 1, 1]),
        fooled: items.map((it) => fools(it.a, it.row)),
      };
    });
    assert.deepEqual(Array.from(batched.dataSync()), Array.from(sequential.dataSync()), `maxRows ${maxRows}`);
    assert.ok(calls <= sequentialCalls, `maxRows ${maxRows}: ${calls} calls > ${sequentialCalls}`);
    batched.dispose();
  }
  tf.dispose([x, sequential]);
});
