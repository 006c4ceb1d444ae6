/**
 * A Hugging Face CLIPModel directory on disk (or a Hub repo id, fetched into
 * the Hugging Face cache by hub.ts), read and written:
 *   config.json                    required
 *   model.safetensors              or model.safetensors.index.json + shards
 *   preprocessor_config.json       optional (defaults: CLIP's pipeline at the model's image size)
 *   tokenizer.json                 optional, parsed only when text is encoded
 *
 * Loading checks every tensor CLIPModel needs against the shape the config
 * implies, so a wrong or truncated checkpoint fails here with the file and
 * the tensor named, not deep inside a matMul.
 */
import { mkdir, stat, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { ClipConfig } from '../core/clip-config.ts';
import { AdvclipError, invalidArgument, notFound } from '../core/errors.ts';
import { sizeOf, type HostTensor } from '../core/tensor.ts';
import {
  clipConfigToJson,
  DEFAULT_PREPROCESS,
  preprocessorConfigToJson,
  readClipConfig,
  readJsonFile,
  readPreprocessorConfig,
  type ImagePreprocessConfig,
} from './hf-config.ts';
import { readSafetensorsFile, writeSafetensors, type WritableDtype } from './safetensors.ts';
import { ClipTokenizer } from './tokenizer.ts';
import { hubOptionsFromEnv, parseHubModelRef, resolveHubModel, type HubOptions } from './hub.ts';
import { expectedClipShapes } from '../core/clip-shapes.ts';

export { expectedClipShapes };

export const CONFIG_FILE = 'config.json';
export const WEIGHTS_FILE = 'model.safetensors';
export const WEIGHTS_INDEX_FILE = 'model.safetensors.index.json';
export const PREPROCESSOR_FILE = 'preprocessor_config.json';
export const TOKENIZER_FILE = 'tokenizer.json';

/** Buffers some exports carry (int64 arange); CLIPModel recomputes them, so they are dropped. */
const IGNORED_KEYS = new Set(['text_model.embeddings.position_ids', 'vision_model.embeddings.position_ids']);

export interface ClipModelFiles {
  readonly config: string;
  /** model.safetensors, or every shard named by the index */
  readonly weights: readonly string[];
  readonly weightsIndex: string | null;
  readonly preprocessor: string | null;
  readonly tokenizer: string | null;
}

export interface ClipModelDir {
  readonly config: ClipConfig;
  /** exactly the tensors of expectedClipShapes(config), as float32 */
  readonly weights: Map<string, HostTensor>;
  readonly tokenizerPath: string | null;
  readonly preprocess: ImagePreprocessConfig;
  readonly files: ClipModelFiles;
  /** parses tokenizer.json on first call; NOT_FOUND when the directory has none */
  loadTokenizer(): Promise<ClipTokenizer>;
}

const shapeText = (shape: readonly number[]) => `[${shape.join(',')}]`;
const sameShape = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((x, i) => x === b[i]);

/**
 * Checks `weights` against the config and returns exactly the expected tensors.
 * `source` names the file in errors. position_ids buffers are dropped; any
 * other unknown tensor is an error, since it means this is not (only) a CLIPModel.
 */
export function checkClipWeights(config: ClipConfig, weights: ReadonlyMap<string, HostTensor>, source: string): Map<string, HostTensor> {
  const expected = expectedClipShapes(config);
  const unexpected = [...weights.keys()].filter((k) => !expected.has(k) && !IGNORED_KEYS.has(k));
  if (unexpected.length > 0) {
    const shown = unexpected.slice(0, 5).map((k) => `"${k}"`).join(', ');
    throw invalidArgument(`${source}: ${unexpected.length} tensor(s) CLIPModel does not have: ${shown}${unexpected.length > 5 ? ', …' : ''}`);
  }
  const checked = new Map<string, HostTensor>();
  for (const [name, shape] of expected) {
    const t = weights.get(name);
    if (t === undefined) throw invalidArgument(`${source}: tensor "${name}" is missing (expected shape ${shapeText(shape)})`);
    // Some exports store the scalar logit_scale as [1]; the value is the same.
    const scalarAsVector = name === 'logit_scale' && sameShape(t.shape, [1]);
    if (!sameShape(t.shape, shape) && !scalarAsVector) {
      throw invalidArgument(`${source}: tensor "${name}" has shape ${shapeText(t.shape)}, expected ${shapeText(shape)}`);
    }
    checked.set(name, scalarAsVector ? { shape: [], data: t.data } : t);
  }
  return checked;
}

async function kindOf(path: string): Promise<'file' | 'dir' | null> {
  try {
    const s = await stat(path);
    return s.isDirectory() ? 'dir' : 'file';
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw cause;
  }
}

async function optionalFile(dir: string, name: string): Promise<string | null> {
  const path = join(dir, name);
  return (await kindOf(path)) === 'file' ? path : null;
}

/** Reads model.safetensors, or the shards an index names (each tensor must be in the shard the index says). */
async function readWeights(dir: string): Promise<{ weights: Map<string, HostTensor>; files: string[]; index: string | null; source: string }> {
  const single = await optionalFile(dir, WEIGHTS_FILE);
  if (single) return { weights: (await readSafetensorsFile(single)).tensors, files: [single], index: null, source: single };
  const index = await optionalFile(dir, WEIGHTS_INDEX_FILE);
  if (!index) {
    const hint = (await optionalFile(dir, 'pytorch_model.bin')) ? ' (pytorch_model.bin is not read: convert it to safetensors)' : '';
    throw notFound(`${dir}: no ${WEIGHTS_FILE} or ${WEIGHTS_INDEX_FILE}${hint}`);
  }
  const weightMap = ((await readJsonFile(index)) as { weight_map?: unknown } | null)?.weight_map;
  if (typeof weightMap !== 'object' || weightMap === null || Array.isArray(weightMap)) {
    throw invalidArgument(`${index}: weight_map must be an object of tensor name → shard file`);
  }
  const byShard = new Map<string, string[]>();
  for (const [name, shard] of Object.entries(weightMap)) {
    // Shards live next to the index; a path could read files outside the model directory.
    if (typeof shard !== 'string' || !/^[\w.-]+\.safetensors$/.test(shard)) {
      throw invalidArgument(`${index}: tensor "${name}" maps to ${JSON.stringify(shard)}, expected a .safetensors file name in the same directory`);
    }
    byShard.set(shard, [...(byShard.get(shard) ?? []), name]);
  }
  const weights = new Map<string, HostTensor>();
  const files: string[] = [];
  for (const [shard, names] of byShard) {
    const path = join(dir, shard);
    const { tensors } = await readSafetensorsFile(path);
    for (const name of names) {
      const t = tensors.get(name);
      if (!t) throw invalidArgument(`${path}: tensor "${name}" is missing (${WEIGHTS_INDEX_FILE} says it is in this shard)`);
      weights.set(name, t);
    }
    files.push(path);
  }
  return { weights, files, index, source: index };
}

/** The CLIP pipeline at the model's own resolution, when the directory has no preprocessor_config.json. */
function defaultPreprocess(config: ClipConfig): ImagePreprocessConfig {
  return Object.freeze({ ...DEFAULT_PREPROCESS, size: config.vision.imageSize, cropSize: config.vision.imageSize });
}

/**
 * The directory `model` names: a local path as it is, or, when no such path
 * exists and it reads `owner/name[@revision]`, that Hub repo's snapshot in the
 * Hugging Face cache (downloaded first when needed; see hub.ts).
 */
export async function resolveModelDir(model: string, hubOptions?: HubOptions): Promise<string> {
  if ((await kindOf(model)) !== null) return model;
  const ref = parseHubModelRef(model);
  if (ref === null) throw notFound(`${model}: model directory does not exist`);
  try {
    return await resolveHubModel(ref, hubOptions ?? (await hubOptionsFromEnv()));
  } catch (error) {
    // a mistyped relative path reads like a repo id too: say both
    if (!(error instanceof AdvclipError)) throw error;
    throw new AdvclipError(error.code, `${model}: no such local directory, and as a Hugging Face Hub repo id: ${error.message}`, { cause: error });
  }
}

/**
 * `model` as another process should be told it (a worker's run config): a
 * local path made absolute, so a process with another working directory
 * finds it; a Hub repo id as it is, so each process resolves it in its cache.
 */
export function modelReference(model: string): string {
  if (existsSync(model) || parseHubModelRef(model) === null) return resolve(model);
  return model;
}

/** Loads a model directory or Hub repo id (see resolveModelDir). */
export async function loadClipModelDir(model: string, hubOptions?: HubOptions): Promise<ClipModelDir> {
  const dir = await resolveModelDir(model, hubOptions);
  const kind = await kindOf(dir);
  if (kind === null) throw notFound(`${dir}: model directory does not exist`);
  if (kind !== 'dir') throw invalidArgument(`${dir}: is a file, expected a model directory`);
  const configPath = join(dir, CONFIG_FILE);
  const config = await readClipConfig(configPath);
  const read = await readWeights(dir);
  const weights = checkClipWeights(config, read.weights, read.source);
  const preprocessorPath = await optionalFile(dir, PREPROCESSOR_FILE);
  const preprocess = preprocessorPath ? await readPreprocessorConfig(preprocessorPath) : defaultPreprocess(config);
  if (preprocessorPath && preprocess.doCenterCrop && preprocess.cropSize !== config.vision.imageSize) {
    throw invalidArgument(`${preprocessorPath}: crop_size ${preprocess.cropSize} does not match vision_config.image_size ${config.vision.imageSize}`);
  }
  const tokenizerPath = await optionalFile(dir, TOKENIZER_FILE);
  let tokenizer: Promise<ClipTokenizer> | null = null;
  return {
    config,
    weights,
    tokenizerPath,
    preprocess,
    files: { config: configPath, weights: read.files, weightsIndex: read.index, preprocessor: preprocessorPath, tokenizer: tokenizerPath },
    loadTokenizer() {
      tokenizer ??= loadMatchingTokenizer(tokenizerPath, dir, config);
      return tokenizer;
    },
  };
}

async function loadMatchingTokenizer(path: string | null, dir: string, config: ClipConfig): Promise<ClipTokenizer> {
  if (path === null) throw notFound(`${dir}: no ${TOKENIZER_FILE}, needed to encode text`);
  const tokenizer = await ClipTokenizer.fromFile(path);
  const { vocabSize, eosTokenId } = config.text;
  if (tokenizer.vocabSize > vocabSize) {
    throw invalidArgument(`${path}: ${tokenizer.vocabSize} tokens do not fit the model's vocab_size ${vocabSize}`);
  }
  // eos_token_id 2 is HF's legacy "argmax" marker, not the tokenizer's EOS id.
  if (eosTokenId !== 2 && tokenizer.eosTokenId !== eosTokenId) {
    throw invalidArgument(`${path}: <|endoftext|> is id ${tokenizer.eosTokenId} but config.json text_config.eos_token_id is ${eosTokenId}`);
  }
  return tokenizer;
}

export interface WriteClipModelOptions {
  readonly config: ClipConfig;
  readonly weights: ReadonlyMap<string, HostTensor>;
  /** written verbatim as tokenizer.json */
  readonly tokenizerJson?: unknown;
  readonly preprocessor?: ImagePreprocessConfig;
  /** storage dtype of model.safetensors (default F32) */
  readonly dtype?: WritableDtype;
}

/** Writes a directory transformers' CLIPModel.from_pretrained (and loadClipModelDir) can read. */
export async function writeClipModelDir(dir: string, opts: WriteClipModelOptions): Promise<ClipModelFiles> {
  const weights = checkClipWeights(opts.config, opts.weights, `${join(dir, WEIGHTS_FILE)} (to be written)`);
  await mkdir(dir, { recursive: true });
  const path = (name: string) => join(dir, name);
  const json = (value: unknown) => `${JSON.stringify(value, null, 2)}\n`;
  const dtype = opts.dtype ?? 'F32';
  await writeFile(path(CONFIG_FILE), json({ ...clipConfigToJson(opts.config), torch_dtype: dtype === 'F16' ? 'float16' : 'float32' }));
  // transformers reads the "format" metadata of a safetensors file to know which framework wrote it.
  await writeFile(path(WEIGHTS_FILE), writeSafetensors(weights, { dtype, metadata: { format: 'pt' } }));
  if (opts.preprocessor) await writeFile(path(PREPROCESSOR_FILE), json(preprocessorConfigToJson(opts.preprocessor)));
  if (opts.tokenizerJson !== undefined) await writeFile(path(TOKENIZER_FILE), json(opts.tokenizerJson));
  return {
    config: path(CONFIG_FILE),
    weights: [path(WEIGHTS_FILE)],
    weightsIndex: null,
    preprocessor: opts.preprocessor ? path(PREPROCESSOR_FILE) : null,
    tokenizer: opts.tokenizerJson !== undefined ? path(TOKENIZER_FILE) : null,
  };
}

/** Total parameter count a config implies (for logs and sanity checks). */
export function clipParameterCount(config: ClipConfig): number {
  let total = 0;
  for (const shape of expectedClipShapes(config).values()) total += sizeOf(shape);
  return total;
}
