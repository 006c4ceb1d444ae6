/**
 * Forward and forward+backward (gradient w.r.t. the pixels, frozen weights)
 * time of a real-size CLIP image tower with random weights, and the ratio to
 * a plain tfjs matMul measured in the same run. Prints one JSON line.
 *
 *   npx tsx bench/forward.ts [--arch vit-b-32] [--batch 8] [--backend wasm]
 */
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { initBackend, parseBackendName } from '../services/core/backend.ts';
import { ClipModel } from '../services/core/clip.ts';
import { archConfig, randomClipWeights } from '../services/core/presets.ts';

const { values } = parseArgs({ options: { arch: { type: 'string', default: 'vit-b-32' }, batch: { type: 'string', default: '8' }, backend: { type: 'string', default: 'wasm' } } });
const backend = await initBackend(parseBackendName(values.backend!));
const time = (f: () => void, n: number) => {
  f();
  const t = performance.now();
  for (let i = 0; i < n; i++) f();
  return (performance.now() - t) / n / 1000;
};

const n = 1024;
const [a, b] = [tf.randomNormal([n, n]), tf.randomNormal([n, n])];
const peak = (2 * n ** 3) / time(() => tf.tidy(() => void tf.matMul(a, b).dataSync()), 10) / 1e9;

const config = archConfig(values.arch!);
const model = ClipModel.fromWeights(config, randomClipWeights(config, 1), { explicitTranspose: backend.tfName !== 'tensorflow' });
const batch = Number(values.batch);
const x = tf.randomUniform([batch, config.vision.imageSize, config.vision.imageSize, 3]) as tf.Tensor4D;
const forward = time(() => tf.tidy(() => void model.encodeImages(x).dataSync()), 3);
const backward = time(() => tf.tidy(() => void tf.grad((p: tf.Tensor) => tf.sum(model.encodeImages(p as tf.Tensor4D)))(x).dataSync()), 3);

// matrix-product FLOPs of the image tower; the input gradient costs about as much again
const v = config.vision;
const tokens = (v.imageSize / v.patchSize) ** 2 + 1;
const d = v.hiddenSize;
const perLayer = 2 * tokens * (4 * d * d + 2 * d * v.intermediateSize) + 4 * tokens * tokens * d;
const flops = batch * (v.numHiddenLayers * perLayer + 2 * (tokens - 1) * 3 * v.patchSize ** 2 * d);
console.log(
  JSON.stringify({
    arch: values.arch,
    batch,
    backend: backend.name,
    matmul_gflops: +peak.toFixed(1),
    forward_s: +forward.toFixed(3),
    forward_backward_s: +backward.toFixed(3),
    forward_fraction_of_matmul: +(flops / forward / 1e9 / peak).toFixed(2),
    forward_backward_fraction_of_matmul: +((2 * flops) / backward / 1e9 / peak).toFixed(2),
  }),
);
