import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { AdvclipError } from '../../../services/core/errors.ts';
import {
  clipConfigToJson,
  CLIP_MEAN,
  CLIP_STD,
  parseClipConfig,
  parsePreprocessorConfig,
  preprocessorConfigToJson,
  readClipConfig,
  readPreprocessorConfig,
} from '../../../services/io/hf-config.ts';

const fixture = (dir: string, file: string) => new URL(`../../fixtures/${dir}/${file}`, import.meta.url).pathname;
const invalid = (source: string, pattern: RegExp) => (e: unknown) =>
  e instanceof AdvclipError && e.code === 'INVALID_ARGUMENT' && e.message.startsWith(`${source}: `) && pattern.test(e.message);

test('reads the tiny fixture config.json', async () => {
  const config = await readClipConfig(fixture('tiny-clip-f32', 'config.json'));
  const vocab = JSON.parse(readFileSync(fixture('tiny-clip-f32', 'tokenizer.json'), 'utf8')).model.vocab;
  assert.deepEqual(config.vision, {
    hiddenSize: 32, intermediateSize: 64, numHiddenLayers: 2, numAttentionHeads: 4, layerNormEps: 1e-5,
    hiddenAct: 'quick_gelu', imageSize: 32, patchSize: 8, numChannels: 3,
  });
  assert.equal(config.text.vocabSize, Object.keys(vocab).length);
  assert.equal(config.text.eosTokenId, vocab['<|endoftext|>']);
  assert.equal(config.text.maxPositionEmbeddings, 16);
  assert.equal(config.projectionDim, 16);
  assert.equal(config.logitScaleInitValue, Math.log(10));
  assert.equal((await readClipConfig(fixture('tiny-clip-eos2', 'config.json'))).text.eosTokenId, 2);
});

test('fills HF defaults: an empty config is OpenAI ViT-B/32', () => {
  const c = parseClipConfig({}, 'config.json');
  assert.deepEqual(
    [c.vision.hiddenSize, c.vision.numHiddenLayers, c.vision.numAttentionHeads, c.vision.patchSize, c.vision.imageSize],
    [768, 12, 12, 32, 224],
  );
  assert.deepEqual(
    [c.text.vocabSize, c.text.hiddenSize, c.text.numAttentionHeads, c.text.maxPositionEmbeddings, c.text.eosTokenId, c.text.bosTokenId, c.text.padTokenId],
    [49408, 512, 8, 77, 49407, 49406, 1],
  );
  assert.equal(c.projectionDim, 512);
  assert.equal(c.logitScaleInitValue, 2.6592);
  assert.ok(Object.isFrozen(c) && Object.isFrozen(c.text));
});

test('accepts the old *_config_dict layout and gelu', () => {
  const c = parseClipConfig({ text_config_dict: { hidden_act: 'gelu', hidden_size: 64, num_attention_heads: 2 }, vision_config_dict: { patch_size: 16 } }, 'old.json');
  assert.equal(c.text.hiddenAct, 'gelu');
  assert.equal(c.text.hiddenSize, 64);
  assert.equal(c.vision.patchSize, 16);
});

test('rejects bad values, naming the file and the key', () => {
  assert.throws(() => parseClipConfig({ vision_config: { hidden_act: 'relu' } }, 'a.json'), invalid('a.json', /vision_config\.hidden_act must be "quick_gelu" or "gelu", got "relu"/));
  assert.throws(() => parseClipConfig({ text_config: { hidden_size: -1 } }, 'b.json'), invalid('b.json', /text_config\.hidden_size must be a positive integer, got -1/));
  assert.throws(() => parseClipConfig({ text_config: { hidden_size: 30 } }, 'c.json'), invalid('c.json', /text_config\.num_attention_heads \(8\) must divide hidden_size \(30\)/));
  assert.throws(() => parseClipConfig({ vision_config: { patch_size: 30 } }, 'd.json'), invalid('d.json', /vision_config\.patch_size \(30\) must divide image_size \(224\)/));
  assert.throws(() => parseClipConfig({ text_config: { vocab_size: 100 } }, 'e.json'), invalid('e.json', /text_config\.eos_token_id \(49407\) is outside the vocabulary/));
  assert.throws(() => parseClipConfig({ projection_dim: '512' }, 'f.json'), invalid('f.json', /projection_dim must be a positive integer, got "512"/));
  assert.throws(() => parseClipConfig({ model_type: 'siglip' }, 'g.json'), invalid('g.json', /model_type/));
  assert.throws(() => parseClipConfig([], 'h.json'), invalid('h.json', /JSON object/));
  assert.throws(() => parseClipConfig({ text_config: 3 }, 'i.json'), invalid('i.json', /text_config must be an object/));
});

test('clipConfigToJson round-trips and looks like an HF CLIPModel config', async () => {
  const config = await readClipConfig(fixture('tiny-clip-f16', 'config.json'));
  const json = clipConfigToJson(config);
  assert.deepEqual(json.architectures, ['CLIPModel']);
  assert.equal(json.model_type, 'clip');
  assert.equal((json.text_config as Record<string, unknown>).model_type, 'clip_text_model');
  assert.equal((json.vision_config as Record<string, unknown>).model_type, 'clip_vision_model');
  assert.deepEqual(parseClipConfig(JSON.parse(JSON.stringify(json)), 'roundtrip'), config);
  // every key the fixture (written in transformers' layout) has for the towers is produced too
  const original = JSON.parse(readFileSync(fixture('tiny-clip-f16', 'config.json'), 'utf8'));
  for (const tower of ['text_config', 'vision_config'] as const) {
    for (const [k, v] of Object.entries(original[tower])) assert.deepEqual((json[tower] as Record<string, unknown>)[k], v, `${tower}.${k}`);
  }
});

test('preprocessor: old int layout and new dict layout give the same CLIP pipeline', async () => {
  const old = await readPreprocessorConfig(fixture('tiny-clip-f32', 'preprocessor_config.json'));
  const current = await readPreprocessorConfig(fixture('tiny-clip-f16', 'preprocessor_config.json'));
  assert.deepEqual(old, current);
  assert.equal(old.size, 32);
  assert.equal(old.cropSize, 32);
  assert.equal(old.resize, 'shortest-edge');
  assert.equal(old.resample, 'bicubic');
  assert.deepEqual(old.mean, CLIP_MEAN);
});

test('preprocessor: defaults are CLIP 224 bicubic with OpenAI mean/std', () => {
  const p = parsePreprocessorConfig({}, 'pp.json');
  assert.deepEqual(p, {
    resize: 'shortest-edge', size: 224, cropSize: 224, mean: [...CLIP_MEAN], std: [...CLIP_STD],
    doResize: true, doCenterCrop: true, doRescale: true, rescaleFactor: 1 / 255, doNormalize: true, resample: 'bicubic',
  });
  assert.equal(parsePreprocessorConfig({ size: { height: 336, width: 336 } }, 'pp.json').resize, 'exact');
  assert.equal(parsePreprocessorConfig({ crop_size: { height: 336, width: 336 } }, 'pp.json').cropSize, 336);
  assert.equal(parsePreprocessorConfig({ resample: 2 }, 'pp.json').resample, 'bilinear');
  const p2 = parsePreprocessorConfig({ size: { height: 100, width: 100 }, resample: 0, do_normalize: false }, 'pp.json');
  assert.deepEqual(parsePreprocessorConfig(preprocessorConfigToJson(p2), 'again'), p2);
});

test('preprocessor: rejects bad values naming file and key', () => {
  assert.throws(() => parsePreprocessorConfig({ image_mean: [0.5, 0.5] }, 'p.json'), invalid('p.json', /image_mean must be three numbers/));
  assert.throws(() => parsePreprocessorConfig({ crop_size: { height: 224, width: 200 } }, 'p.json'), invalid('p.json', /crop_size must be square/));
  assert.throws(() => parsePreprocessorConfig({ size: { shortest_edge: 0 } }, 'p.json'), invalid('p.json', /size\.shortest_edge must be a positive integer/));
  assert.throws(() => parsePreprocessorConfig({ resample: 9 }, 'p.json'), invalid('p.json', /resample must be a PIL filter/));
  assert.throws(() => parsePreprocessorConfig({ do_resize: 'yes' }, 'p.json'), invalid('p.json', /do_resize must be true or false/));
});

test('missing file is NOT_FOUND, broken JSON is DATA_LOSS, both naming the path', async () => {
  await assert.rejects(readClipConfig('/nope/config.json'), (e: unknown) => e instanceof AdvclipError && e.code === 'NOT_FOUND' && e.message.includes('/nope/config.json'));
  await assert.rejects(readClipConfig(fixture('tiny-clip-f32', 'model.safetensors')), (e: unknown) => e instanceof AdvclipError && e.code === 'DATA_LOSS' && e.message.includes('model.safetensors: not valid JSON'));
});
