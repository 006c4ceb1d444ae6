import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AdvclipError } from '../../../services/core/errors.ts';
import { hostTensor, type HostTensor } from '../../../services/core/tensor.ts';
import { parseClipConfig } from '../../../services/io/hf-config.ts';
import {
  checkClipWeights,
  clipParameterCount,
  expectedClipShapes,
  loadClipModelDir,
  writeClipModelDir,
} from '../../../services/io/model-dir.ts';
import { readSafetensorsFile, writeSafetensors } from '../../../services/io/safetensors.ts';

const fixture = (name: string) => new URL(`../../fixtures/${name}/`, import.meta.url).pathname;
const scratch = await mkdtemp(join(tmpdir(), 'advclip-model-dir-'));
after(() => rm(scratch, { recursive: true, force: true }));
let n = 0;
/** A private copy of a fixture directory that a test may damage. */
async function copyOf(name: string): Promise<string> {
  const dir = join(scratch, `${name}-${n++}`);
  await cp(fixture(name), dir, { recursive: true });
  return dir;
}
const failsWith = (code: string, pattern: RegExp) => (e: unknown) => e instanceof AdvclipError && e.code === code && pattern.test(e.message);

const f32 = await loadClipModelDir(fixture('tiny-clip-f32'));

test('loads the f32 fixture: config, every expected tensor, preprocessing, files', () => {
  const expected = expectedClipShapes(f32.config);
  assert.deepEqual([...f32.weights.keys()].sort(), [...expected.keys()].sort());
  for (const [name, shape] of expected) assert.deepEqual(f32.weights.get(name)!.shape, shape, name);
  assert.equal(f32.weights.get('logit_scale')!.data[0], Math.fround(Math.log(10)));
  assert.equal(f32.preprocess.size, 32);
  assert.equal(f32.preprocess.cropSize, 32);
  assert.equal(f32.files.weights.length, 1);
  assert.ok(f32.files.weights[0].endsWith('model.safetensors'));
  assert.ok(f32.tokenizerPath?.endsWith('tokenizer.json'));
});

test('the tokenizer loads lazily and agrees with the config', async () => {
  const tokenizer = await f32.loadTokenizer();
  assert.equal(tokenizer.eosTokenId, f32.config.text.eosTokenId);
  assert.equal(tokenizer.vocabSize, f32.config.text.vocabSize);
  assert.equal(await f32.loadTokenizer(), tokenizer, 'parsed once');
  const eos2 = await loadClipModelDir(fixture('tiny-clip-eos2'));
  assert.equal(eos2.config.text.eosTokenId, 2);
  assert.equal((await eos2.loadTokenizer()).eosTokenId, tokenizer.eosTokenId, 'legacy eos 2 config is accepted with the real tokenizer');
});

test('the f16 fixture holds the f32 weights rounded to half precision', async () => {
  const f16 = await loadClipModelDir(fixture('tiny-clip-f16'));
  const file = await readSafetensorsFile(f16.files.weights[0]);
  assert.ok([...file.dtypes.values()].every((d) => d === 'F16'));
  for (const [name, t] of f32.weights) {
    const h = f16.weights.get(name)!;
    t.data.forEach((x, i) => assert.ok(Math.abs(h.data[i] - x) <= Math.abs(x) * 2 ** -11 + 2 ** -25, `${name}[${i}]`));
  }
});

test('expected shapes for real ViT-B/32 and ViT-B/16 configs (HF parameter counts)', () => {
  const b32 = parseClipConfig({}, 'vit-b-32/config.json');
  const b16 = parseClipConfig({ vision_config: { patch_size: 16 } }, 'vit-b-16/config.json');
  assert.equal(clipParameterCount(b32), 151_277_313);
  assert.equal(clipParameterCount(b16), 149_620_737);
  const s32 = expectedClipShapes(b32);
  const s16 = expectedClipShapes(b16);
  assert.equal(s32.size, 2 + 12 * 16 + 2 + 3 + 2 + 12 * 16 + 2 + 2 + 1);
  assert.deepEqual(s32.get('vision_model.embeddings.patch_embedding.weight'), [768, 3, 32, 32]);
  assert.deepEqual(s16.get('vision_model.embeddings.patch_embedding.weight'), [768, 3, 16, 16]);
  assert.deepEqual(s32.get('vision_model.embeddings.position_embedding.weight'), [50, 768]);
  assert.deepEqual(s16.get('vision_model.embeddings.position_embedding.weight'), [197, 768]);
  assert.deepEqual(s32.get('text_model.embeddings.token_embedding.weight'), [49408, 512]);
  assert.deepEqual(s32.get('text_model.encoder.layers.11.mlp.fc1.weight'), [2048, 512]);
  assert.deepEqual(s32.get('vision_model.encoder.layers.11.mlp.fc2.weight'), [768, 3072]);
  assert.deepEqual(s32.get('visual_projection.weight'), [512, 768]);
  assert.deepEqual(s32.get('text_projection.weight'), [512, 512]);
  assert.deepEqual(s32.get('logit_scale'), []);
  assert.ok(s32.has('vision_model.pre_layrnorm.weight'));
  assert.equal(s32.has('vision_model.encoder.layers.12.self_attn.q_proj.weight'), false);
});

/** Fake weights for a config: right names, given overrides, no real-size allocation needed for the message checks. */
function withTensor(weights: ReadonlyMap<string, HostTensor>, name: string, t: HostTensor | null): Map<string, HostTensor> {
  const copy = new Map(weights);
  if (t === null) copy.delete(name);
  else copy.set(name, t);
  return copy;
}

test('wrong shape, missing and unknown tensors are rejected naming file and tensor', () => {
  const q = 'vision_model.encoder.layers.1.self_attn.q_proj.weight';
  assert.throws(
    () => checkClipWeights(f32.config, withTensor(f32.weights, q, hostTensor([2, 32], new Float32Array(64))), 'model.safetensors'),
    failsWith('INVALID_ARGUMENT', /^model\.safetensors: tensor "vision_model\.encoder\.layers\.1\.self_attn\.q_proj\.weight" has shape \[2,32\], expected \[32,32\]$/),
  );
  assert.throws(
    () => checkClipWeights(f32.config, withTensor(f32.weights, 'text_projection.weight', null), 'model.safetensors'),
    failsWith('INVALID_ARGUMENT', /model\.safetensors: tensor "text_projection\.weight" is missing \(expected shape \[16,32\]\)/),
  );
  const lora = 'text_model.encoder.layers.0.self_attn.q_proj.lora_A.weight';
  assert.throws(
    () => checkClipWeights(f32.config, withTensor(f32.weights, lora, hostTensor([2, 32], new Float32Array(64))), 'm.safetensors'),
    failsWith('INVALID_ARGUMENT', /m\.safetensors: 1 tensor\(s\) CLIPModel does not have: "text_model\.encoder\.layers\.0\.self_attn\.q_proj\.lora_A\.weight"/),
  );
});

test('position_ids buffers are ignored and a [1] logit_scale is read as a scalar', async () => {
  const dir = await copyOf('tiny-clip-f32');
  const weights = withTensor(f32.weights, 'text_model.embeddings.position_ids', hostTensor([1, 16], Float32Array.from({ length: 16 }, (_, i) => i)));
  weights.set('logit_scale', hostTensor([1], Float32Array.from([2])));
  await writeFile(join(dir, 'model.safetensors'), writeSafetensors(weights));
  const loaded = await loadClipModelDir(dir);
  assert.equal(loaded.weights.has('text_model.embeddings.position_ids'), false);
  assert.deepEqual(loaded.weights.get('logit_scale'), { shape: [], data: Float32Array.from([2]) });
});

test('reads sharded weights through model.safetensors.index.json', async () => {
  const dir = await copyOf('tiny-clip-f32');
  await rm(join(dir, 'model.safetensors'));
  const names = [...f32.weights.keys()];
  const shards = [names.filter((k) => k.startsWith('text_')), names.filter((k) => !k.startsWith('text_'))];
  const weightMap: Record<string, string> = {};
  for (const [i, shard] of shards.entries()) {
    const file = `model-0000${i + 1}-of-00002.safetensors`;
    await writeFile(join(dir, file), writeSafetensors(new Map(shard.map((k) => [k, f32.weights.get(k)!]))));
    for (const k of shard) weightMap[k] = file;
  }
  await writeFile(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }));
  const loaded = await loadClipModelDir(dir);
  assert.equal(loaded.files.weights.length, 2);
  assert.ok(loaded.files.weightsIndex?.endsWith('model.safetensors.index.json'));
  for (const [name, t] of f32.weights) assert.deepEqual(loaded.weights.get(name), t, name);

  await writeFile(join(dir, 'model.safetensors.index.json'), JSON.stringify({ weight_map: { ...weightMap, logit_scale: '../evil.safetensors' } }));
  await assert.rejects(loadClipModelDir(dir), failsWith('INVALID_ARGUMENT', /index\.json: tensor "logit_scale" maps to "\.\.\/evil\.safetensors"/));
  await writeFile(join(dir, 'model.safetensors.index.json'), JSON.stringify({ weight_map: { ...weightMap, logit_scale: 'model-00001-of-00002.safetensors' } }));
  await assert.rejects(loadClipModelDir(dir), failsWith('INVALID_ARGUMENT', /model-00001-of-00002\.safetensors: tensor "logit_scale" is missing/));
});

test('missing directory, config or weights are NOT_FOUND naming what is missing', async () => {
  await assert.rejects(loadClipModelDir(join(scratch, 'nope')), failsWith('NOT_FOUND', /nope: model directory does not exist/));
  const noConfig = await copyOf('tiny-clip-f32');
  await rm(join(noConfig, 'config.json'));
  await assert.rejects(loadClipModelDir(noConfig), failsWith('NOT_FOUND', /config\.json: no such file/));
  const noWeights = await copyOf('tiny-clip-f32');
  await rm(join(noWeights, 'model.safetensors'));
  await writeFile(join(noWeights, 'pytorch_model.bin'), '');
  await assert.rejects(loadClipModelDir(noWeights), failsWith('NOT_FOUND', /no model\.safetensors or model\.safetensors\.index\.json \(pytorch_model\.bin is not read/));
});

test('a truncated model.safetensors is DATA_LOSS naming the file', async () => {
  const dir = await copyOf('tiny-clip-f16');
  const bytes = await readFile(join(dir, 'model.safetensors'));
  await writeFile(join(dir, 'model.safetensors'), bytes.subarray(0, bytes.length - 100));
  await assert.rejects(loadClipModelDir(dir), failsWith('DATA_LOSS', /model\.safetensors: .*truncated|model\.safetensors: tensors cover/));
});

test('config/tokenizer/preprocessor disagreements are caught', async () => {
  const dir = await copyOf('tiny-clip-f32');
  await rm(join(dir, 'tokenizer.json'));
  await rm(join(dir, 'preprocessor_config.json'));
  const bare = await loadClipModelDir(dir);
  assert.equal(bare.tokenizerPath, null);
  assert.equal(bare.preprocess.cropSize, 32, 'defaults follow the model image size');
  await assert.rejects(bare.loadTokenizer(), failsWith('NOT_FOUND', /no tokenizer\.json, needed to encode text/));

  const wrongEos = await copyOf('tiny-clip-f32');
  const config = JSON.parse(await readFile(join(wrongEos, 'config.json'), 'utf8'));
  config.text_config.eos_token_id = 5;
  await writeFile(join(wrongEos, 'config.json'), JSON.stringify(config));
  await assert.rejects((await loadClipModelDir(wrongEos)).loadTokenizer(), failsWith('INVALID_ARGUMENT', /tokenizer\.json: <\|endoftext\|> is id \d+ but config\.json text_config\.eos_token_id is 5/));

  const wrongCrop = await copyOf('tiny-clip-f32');
  await writeFile(join(wrongCrop, 'preprocessor_config.json'), JSON.stringify({ crop_size: 224 }));
  await assert.rejects(loadClipModelDir(wrongCrop), failsWith('INVALID_ARGUMENT', /preprocessor_config\.json: crop_size 224 does not match vision_config\.image_size 32/));
});

test('writeClipModelDir round-trips through loadClipModelDir, in F16 too', async () => {
  const tokenizerJson = JSON.parse(await readFile(f32.tokenizerPath!, 'utf8'));
  const out = join(scratch, 'written');
  const files = await writeClipModelDir(out, { config: f32.config, weights: f32.weights, tokenizerJson, preprocessor: f32.preprocess, dtype: 'F16' });
  const back = await loadClipModelDir(out);
  assert.deepEqual(back.config, f32.config);
  assert.deepEqual(back.preprocess, f32.preprocess);
  assert.deepEqual(back.files.weights, files.weights);
  const f16 = await loadClipModelDir(fixture('tiny-clip-f16'));
  for (const [name, t] of f16.weights) assert.deepEqual(back.weights.get(name)!.data, t.data, `${name}: same half rounding as numpy`);
  const header = await readSafetensorsFile(files.weights[0]);
  assert.deepEqual(header.metadata, { format: 'pt' });
  assert.equal((await back.loadTokenizer()).encode('a red star', 16).length, (await f32.loadTokenizer()).encode('a red star', 16).length);

  await assert.rejects(
    writeClipModelDir(join(scratch, 'never'), { config: f32.config, weights: withTensor(f32.weights, 'logit_scale', null) }),
    failsWith('INVALID_ARGUMENT', /tensor "logit_scale" is missing/),
  );
});
