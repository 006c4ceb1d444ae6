/**
 * Hugging Face CLIP configuration files ↔ our typed configs:
 * `config.json` (CLIPConfig) ↔ ClipConfig, and `preprocessor_config.json`
 * (CLIPImageProcessor / the older CLIPFeatureExtractor) → ImagePreprocessConfig.
 *
 * Missing keys take the defaults of HF's CLIPTextConfig / CLIPVisionConfig /
 * CLIPImageProcessor, because that is what `from_pretrained` would do with
 * the same file. Values we cannot run (an activation other than quick_gelu
 * or gelu, heads that do not divide the width) are rejected here, naming the
 * file and the key, rather than failing later inside the model.
 */
import { readFile } from 'node:fs/promises';
import type { ClipConfig, ClipTextConfig, ClipVisionConfig, HiddenAct } from '../core/clip-config.ts';
import { AdvclipError, invalidArgument, notFound } from '../core/errors.ts';
import { CLIP_MEAN, CLIP_STD } from '../core/clip.ts';

type Json = Record<string, unknown>;

const TEXT_DEFAULTS = {
  vocab_size: 49408,
  hidden_size: 512,
  intermediate_size: 2048,
  num_hidden_layers: 12,
  num_attention_heads: 8,
  max_position_embeddings: 77,
  hidden_act: 'quick_gelu',
  layer_norm_eps: 1e-5,
  pad_token_id: 1,
  bos_token_id: 49406,
  eos_token_id: 49407,
} as const;

const VISION_DEFAULTS = {
  hidden_size: 768,
  intermediate_size: 3072,
  num_hidden_layers: 12,
  num_attention_heads: 12,
  num_channels: 3,
  image_size: 224,
  patch_size: 32,
  hidden_act: 'quick_gelu',
  layer_norm_eps: 1e-5,
} as const;

const CLIP_DEFAULTS = { projection_dim: 512, logit_scale_init_value: 2.6592 } as const;

/** OpenAI CLIP's pixel statistics (CLIPImageProcessor's defaults) live with the model. */
export { CLIP_MEAN, CLIP_STD };

/** PIL resampling filters by the integer preprocessor_config.json stores. */
const RESAMPLE = ['nearest', 'lanczos', 'bilinear', 'bicubic', 'box', 'hamming'] as const;
export type Resample = (typeof RESAMPLE)[number];

export interface ImagePreprocessConfig {
  /** 'shortest-edge': scale so the short side is `size` (CLIP); 'exact': stretch to size×size */
  readonly resize: 'shortest-edge' | 'exact';
  readonly size: number;
  /** side of the square centre crop */
  readonly cropSize: number;
  readonly mean: readonly [number, number, number];
  readonly std: readonly [number, number, number];
  readonly doResize: boolean;
  readonly doCenterCrop: boolean;
  readonly doRescale: boolean;
  /** 1/255: bytes → [0,1], the space attacks live in */
  readonly rescaleFactor: number;
  readonly doNormalize: boolean;
  readonly resample: Resample;
}

export const DEFAULT_PREPROCESS: ImagePreprocessConfig = Object.freeze({
  resize: 'shortest-edge',
  size: 224,
  cropSize: 224,
  mean: CLIP_MEAN,
  std: CLIP_STD,
  doResize: true,
  doCenterCrop: true,
  doRescale: true,
  rescaleFactor: 1 / 255,
  doNormalize: true,
  resample: 'bicubic',
});

/** Reads one value of a config object, with the file and dotted key in every error. */
class Reader {
  constructor(
    private readonly obj: Json,
    private readonly source: string,
    private readonly prefix: string,
  ) {}

  private fail(key: string, what: string, value: unknown): AdvclipError {
    return invalidArgument(`${this.source}: ${this.prefix}${key} must be ${what}, got ${JSON.stringify(value)}`);
  }

  private value<T>(key: string, fallback: T): unknown {
    const v = this.obj[key];
    return v === undefined || v === null ? fallback : v;
  }

  positiveInt(key: string, fallback: number): number {
    const v = this.value(key, fallback);
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw this.fail(key, 'a positive integer', v);
    return v;
  }

  tokenId(key: string, fallback: number): number {
    const v = this.value(key, fallback);
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw this.fail(key, 'a non-negative integer', v);
    return v;
  }

  positive(key: string, fallback: number): number {
    const v = this.value(key, fallback);
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw this.fail(key, 'a positive number', v);
    return v;
  }

  finite(key: string, fallback: number): number {
    const v = this.value(key, fallback);
    if (typeof v !== 'number' || !Number.isFinite(v)) throw this.fail(key, 'a finite number', v);
    return v;
  }

  bool(key: string, fallback: boolean): boolean {
    const v = this.value(key, fallback);
    if (typeof v !== 'boolean') throw this.fail(key, 'true or false', v);
    return v;
  }

  activation(key: string, fallback: HiddenAct): HiddenAct {
    const v = this.value(key, fallback);
    if (v !== 'quick_gelu' && v !== 'gelu') throw this.fail(key, '"quick_gelu" or "gelu"', v);
    return v;
  }

  triple(key: string, fallback: readonly [number, number, number]): readonly [number, number, number] {
    const v = this.value(key, fallback);
    if (!Array.isArray(v) || v.length !== 3 || !v.every((x) => typeof x === 'number' && Number.isFinite(x))) {
      throw this.fail(key, 'three numbers (one per RGB channel)', v);
    }
    return [v[0], v[1], v[2]];
  }

  object(key: string): Json {
    const v = this.value(key, {});
    if (typeof v !== 'object' || Array.isArray(v)) throw this.fail(key, 'an object', v);
    return v as Json;
  }

  child(key: string): Reader {
    return new Reader(this.object(key), this.source, `${this.prefix}${key}.`);
  }

  raw(key: string): unknown {
    return this.obj[key];
  }

  failWith(key: string, message: string): AdvclipError {
    return invalidArgument(`${this.source}: ${this.prefix}${key} ${message}`);
  }
}

function rootReader(json: unknown, source: string): Reader {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw invalidArgument(`${source}: expected a JSON object at the top level`);
  }
  return new Reader(json as Json, source, '');
}

function checkHeads(r: Reader, hidden: number, heads: number): void {
  if (hidden % heads !== 0) throw r.failWith('num_attention_heads', `(${heads}) must divide hidden_size (${hidden})`);
}

function textConfig(r: Reader): ClipTextConfig {
  const d = TEXT_DEFAULTS;
  const hiddenSize = r.positiveInt('hidden_size', d.hidden_size);
  const numAttentionHeads = r.positiveInt('num_attention_heads', d.num_attention_heads);
  checkHeads(r, hiddenSize, numAttentionHeads);
  const vocabSize = r.positiveInt('vocab_size', d.vocab_size);
  const eosTokenId = r.tokenId('eos_token_id', d.eos_token_id);
  // eos_token_id 2 is HF's legacy marker for "pool at argmax(input_ids)", not a real id to look for.
  if (eosTokenId !== 2 && eosTokenId >= vocabSize) throw r.failWith('eos_token_id', `(${eosTokenId}) is outside the vocabulary (vocab_size ${vocabSize})`);
  return {
    hiddenSize,
    intermediateSize: r.positiveInt('intermediate_size', d.intermediate_size),
    numHiddenLayers: r.positiveInt('num_hidden_layers', d.num_hidden_layers),
    numAttentionHeads,
    layerNormEps: r.positive('layer_norm_eps', d.layer_norm_eps),
    hiddenAct: r.activation('hidden_act', d.hidden_act),
    vocabSize,
    maxPositionEmbeddings: r.positiveInt('max_position_embeddings', d.max_position_embeddings),
    eosTokenId,
    bosTokenId: r.tokenId('bos_token_id', d.bos_token_id),
    padTokenId: r.tokenId('pad_token_id', d.pad_token_id),
  };
}

function visionConfig(r: Reader): ClipVisionConfig {
  const d = VISION_DEFAULTS;
  const hiddenSize = r.positiveInt('hidden_size', d.hidden_size);
  const numAttentionHeads = r.positiveInt('num_attention_heads', d.num_attention_heads);
  checkHeads(r, hiddenSize, numAttentionHeads);
  const imageSize = r.positiveInt('image_size', d.image_size);
  const patchSize = r.positiveInt('patch_size', d.patch_size);
  if (imageSize % patchSize !== 0) throw r.failWith('patch_size', `(${patchSize}) must divide image_size (${imageSize})`);
  return {
    hiddenSize,
    intermediateSize: r.positiveInt('intermediate_size', d.intermediate_size),
    numHiddenLayers: r.positiveInt('num_hidden_layers', d.num_hidden_layers),
    numAttentionHeads,
    layerNormEps: r.positive('layer_norm_eps', d.layer_norm_eps),
    hiddenAct: r.activation('hidden_act', d.hidden_act),
    imageSize,
    patchSize,
    numChannels: r.positiveInt('num_channels', d.num_channels),
  };
}

/** HF CLIPConfig JSON → ClipConfig. `source` names the file in errors. */
export function parseClipConfig(json: unknown, source: string): ClipConfig {
  const r = rootReader(json, source);
  const modelType = r.raw('model_type');
  if (modelType !== undefined && modelType !== 'clip') {
    throw r.failWith('model_type', `must be "clip" (a CLIPModel config), got ${JSON.stringify(modelType)}`);
  }
  // Configs saved by transformers < 4.23 nest the towers under *_config_dict.
  const tower = (name: string) => (r.raw(name) === undefined && r.raw(`${name}_dict`) !== undefined ? r.child(`${name}_dict`) : r.child(name));
  return Object.freeze({
    text: Object.freeze(textConfig(tower('text_config'))),
    vision: Object.freeze(visionConfig(tower('vision_config'))),
    projectionDim: r.positiveInt('projection_dim', CLIP_DEFAULTS.projection_dim),
    logitScaleInitValue: r.finite('logit_scale_init_value', CLIP_DEFAULTS.logit_scale_init_value),
  });
}

/** ClipConfig → a config.json that transformers' CLIPModel.from_pretrained accepts. */
export function clipConfigToJson(config: ClipConfig): Json {
  const tower = (c: ClipTextConfig | ClipVisionConfig) => ({
    hidden_size: c.hiddenSize,
    intermediate_size: c.intermediateSize,
    num_hidden_layers: c.numHiddenLayers,
    num_attention_heads: c.numAttentionHeads,
    hidden_act: c.hiddenAct,
    layer_norm_eps: c.layerNormEps,
    attention_dropout: 0.0,
    dropout: 0.0,
    initializer_factor: 1.0,
    initializer_range: 0.02,
    projection_dim: config.projectionDim,
  });
  const { text, vision } = config;
  return {
    architectures: ['CLIPModel'],
    model_type: 'clip',
    initializer_factor: 1.0,
    logit_scale_init_value: config.logitScaleInitValue,
    projection_dim: config.projectionDim,
    torch_dtype: 'float32',
    text_config: {
      ...tower(text),
      model_type: 'clip_text_model',
      vocab_size: text.vocabSize,
      max_position_embeddings: text.maxPositionEmbeddings,
      bos_token_id: text.bosTokenId,
      eos_token_id: text.eosTokenId,
      pad_token_id: text.padTokenId,
    },
    vision_config: {
      ...tower(vision),
      model_type: 'clip_vision_model',
      image_size: vision.imageSize,
      patch_size: vision.patchSize,
      num_channels: vision.numChannels,
    },
  };
}

/** `size` / `crop_size` come as an int, {shortest_edge}, or {height, width}. */
function sizeEntry(r: Reader, key: string, fallback: number): { kind: 'shortest-edge' | 'exact'; size: number } {
  const v = r.raw(key);
  if (v === undefined || v === null || typeof v === 'number') return { kind: 'shortest-edge', size: r.positiveInt(key, fallback) };
  const inner = r.child(key);
  if (typeof v === 'object' && 'shortest_edge' in v) return { kind: 'shortest-edge', size: inner.positiveInt('shortest_edge', fallback) };
  const height = inner.positiveInt('height', fallback);
  const width = inner.positiveInt('width', fallback);
  if (height !== width) throw r.failWith(key, `must be square for CLIP, got ${height}x${width}`);
  return { kind: 'exact', size: height };
}

/** HF preprocessor_config.json → ImagePreprocessConfig (CLIP defaults for what it leaves out). */
export function parsePreprocessorConfig(json: unknown, source: string): ImagePreprocessConfig {
  const r = rootReader(json, source);
  const d = DEFAULT_PREPROCESS;
  const resize = sizeEntry(r, 'size', d.size);
  const resampleCode = r.tokenId('resample', RESAMPLE.indexOf(d.resample));
  const resample = RESAMPLE[resampleCode];
  if (resample === undefined) throw r.failWith('resample', `must be a PIL filter 0..5, got ${resampleCode}`);
  return Object.freeze({
    resize: resize.kind,
    size: resize.size,
    // a crop given as {height, width} is a crop, never a resize
    cropSize: sizeEntry(r, 'crop_size', d.cropSize).size,
    mean: r.triple('image_mean', d.mean),
    std: r.triple('image_std', d.std),
    doResize: r.bool('do_resize', d.doResize),
    doCenterCrop: r.bool('do_center_crop', d.doCenterCrop),
    doRescale: r.bool('do_rescale', d.doRescale),
    rescaleFactor: r.positive('rescale_factor', d.rescaleFactor),
    doNormalize: r.bool('do_normalize', d.doNormalize),
    resample,
  });
}

/** ImagePreprocessConfig → preprocessor_config.json in CLIPImageProcessor's current layout. */
export function preprocessorConfigToJson(p: ImagePreprocessConfig): Json {
  return {
    image_processor_type: 'CLIPImageProcessor',
    size: p.resize === 'shortest-edge' ? { shortest_edge: p.size } : { height: p.size, width: p.size },
    crop_size: { height: p.cropSize, width: p.cropSize },
    do_resize: p.doResize,
    do_center_crop: p.doCenterCrop,
    do_rescale: p.doRescale,
    rescale_factor: p.rescaleFactor,
    do_normalize: p.doNormalize,
    do_convert_rgb: true,
    image_mean: [...p.mean],
    image_std: [...p.std],
    resample: RESAMPLE.indexOf(p.resample),
  };
}

/** Reads a JSON file; a missing file is NOT_FOUND, bad JSON is DATA_LOSS, both naming the path. */
export async function readJsonFile(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === 'ENOENT') throw notFound(`${path}: no such file`);
    throw cause;
  }
  try {
    return JSON.parse(text);
  } catch (cause) {
    throw new AdvclipError('DATA_LOSS', `${path}: not valid JSON (${(cause as Error).message})`, { cause });
  }
}

export async function readClipConfig(path: string): Promise<ClipConfig> {
  return parseClipConfig(await readJsonFile(path), path);
}

export async function readPreprocessorConfig(path: string): Promise<ImagePreprocessConfig> {
  return parsePreprocessorConfig(await readJsonFile(path), path);
}
