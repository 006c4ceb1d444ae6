/**
 * CLIP (ViT image tower + causal text transformer) with Hugging Face's math
 * (`CLIPModel`): pre-LN blocks, quick_gelu, class token and learned positions,
 * `pre_layrnorm`, causal text mask, EOS pooling, projections, cosine logits
 * scaled by exp(logit_scale). Pixels enter in [0,1]: normalisation is the
 * first operation, so attacks live in pixel space.
 *
 * LoRA enters through `Adapters`: W = W0 + s·B·A on the adapted linears, with
 * an optional dropout on the LoRA input.
 */
import * as tf from '@tensorflow/tfjs';
import type { ClipConfig, ClipTextConfig, ClipVisionConfig, HiddenAct } from './clip-config.ts';
import { dropoutMask, type DropoutPlan } from './dropout.ts';
import { invalidArgument } from './errors.ts';
import { frozenLinear, gelu, layerNorm, matMulPlain, quickGelu, type FrozenLinear } from './layers.ts';
import type { HostTensor } from './tensor.ts';

export const CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073] as const;
export const CLIP_STD = [0.26862954, 0.26130258, 0.27577711] as const;

/** LoRA factors as graph tensors (PEFT orientation) keyed by site, plus the scale s. */
export interface Adapters {
  readonly scale: number;
  readonly factors: ReadonlyMap<string, { readonly a: tf.Tensor2D; readonly b: tf.Tensor2D }>;
  /** LoRA-input dropout for this forward pass; null = none (eval) */
  readonly dropout: DropoutPlan | null;
}

interface Block {
  readonly prefix: string;
  readonly ln1: readonly [tf.Tensor1D, tf.Tensor1D];
  readonly q: FrozenLinear;
  readonly k: FrozenLinear;
  readonly v: FrozenLinear;
  readonly o: FrozenLinear;
  readonly ln2: readonly [tf.Tensor1D, tf.Tensor1D];
  readonly fc1: FrozenLinear;
  readonly fc2: FrozenLinear;
}

interface VisionTower {
  readonly patch: FrozenLinear; // [3·p·p, D], rows in (channel, y, x) order as the conv kernel
  readonly classEmbedding: tf.Tensor1D; // [D]
  readonly positions: tf.Tensor2D; // [1 + patches, D]
  readonly preLn: readonly [tf.Tensor1D, tf.Tensor1D];
  readonly blocks: readonly Block[];
  readonly postLn: readonly [tf.Tensor1D, tf.Tensor1D];
  readonly projection: FrozenLinear; // [D, P]
  readonly mean: tf.Tensor1D;
  readonly std: tf.Tensor1D;
}

interface TextTower {
  readonly tokens: tf.Tensor2D; // [vocab, D]
  readonly positions: tf.Tensor2D; // [maxPositions, D]
  readonly blocks: readonly Block[];
  readonly finalLn: readonly [tf.Tensor1D, tf.Tensor1D];
  readonly projection: FrozenLinear; // [D, P]
}

export interface ClipModelOptions {
  /** plain-product gradients (wasm/cpu); native backends run transposed products fast */
  readonly explicitTranspose: boolean;
  /** every weight a tf.Variable with gradients (contrastive pretraining); default frozen */
  readonly trainable?: boolean;
}

/** where an HF tensor lives in the model: stored as is, or transposed (linears) */
interface NamedWeight {
  readonly tensor: tf.Tensor;
  readonly hfShape: readonly number[];
  readonly transposed: boolean;
}

type WeightSource = (name: string) => HostTensor;

export class ClipModel {
  readonly config: ClipConfig;
  readonly logitScale: number;
  private readonly vision: VisionTower;
  private readonly text: TextTower;
  private readonly explicitTranspose: boolean;
  private readonly trainable: boolean;
  private readonly owned: tf.Tensor[];
  private readonly named: ReadonlyMap<string, NamedWeight>;
  /** trainable only: ln(logit scale) as a variable */
  readonly logitScaleVariable: tf.Variable | null;

  private constructor(config: ClipConfig, vision: VisionTower, text: TextTower, logitScale: number, opts: ClipModelOptions, owned: tf.Tensor[], named: Map<string, NamedWeight>) {
    this.config = config;
    this.vision = vision;
    this.text = text;
    this.logitScale = logitScale;
    this.explicitTranspose = opts.explicitTranspose;
    this.trainable = opts.trainable ?? false;
    this.owned = owned;
    this.named = named;
    this.logitScaleVariable = this.trainable ? (named.get('logit_scale')!.tensor as tf.Variable) : null;
  }

  /** Builds the frozen model from HF-named host tensors (shapes checked by the loader). */
  static fromWeights(config: ClipConfig, weights: ReadonlyMap<string, HostTensor>, opts: ClipModelOptions): ClipModel {
    const owned: tf.Tensor[] = [];
    const named = new Map<string, NamedWeight>();
    const trainable = opts.trainable ?? false;
    const get: WeightSource = (name) => {
      const t = weights.get(name);
      if (!t) throw invalidArgument(`model weights lack tensor "${name}"`);
      return t;
    };
    // every model tensor comes through here: owned, named for export, a variable when trainable
    const keep = <T extends tf.Tensor>(name: string, t: T, transposed = false): T => {
      const held = (trainable ? tf.variable(t, true, name.replace(/[^A-Za-z0-9_.]/g, '_')) : t) as unknown as T;
      if (held !== t) t.dispose();
      owned.push(held);
      named.set(name, { tensor: held, hfShape: get(name).shape, transposed });
      return held;
    };
    const vec = (name: string) => keep(name, tf.tensor1d(get(name).data));
    const mat = (name: string) => {
      const t = get(name);
      return keep(name, tf.tensor2d(t.data, [t.shape[0], t.shape[1]]));
    };
    const linear = (name: string, rows: number, cols: number, bias: tf.Tensor1D | null): FrozenLinear => {
      const w = tf.tidy(() => tf.transpose(tf.tensor2d(get(name).data, [rows, cols]))) as tf.Tensor2D;
      return { w: keep(name, w, true), bias, explicitTranspose: opts.explicitTranspose, trainable };
    };
    const hfLinear = (prefix: string, withBias = true) => {
      const [rows, cols] = get(`${prefix}.weight`).shape;
      return linear(`${prefix}.weight`, rows, cols, withBias ? vec(`${prefix}.bias`) : null);
    };
    const norm = (prefix: string) => [vec(`${prefix}.weight`), vec(`${prefix}.bias`)] as const;
    const blocks = (tower: string, n: number): Block[] =>
      Array.from({ length: n }, (_, i) => {
        const p = `${tower}.encoder.layers.${i}`;
        return {
          prefix: p,
          ln1: norm(`${p}.layer_norm1`),
          q: hfLinear(`${p}.self_attn.q_proj`),
          k: hfLinear(`${p}.self_attn.k_proj`),
          v: hfLinear(`${p}.self_attn.v_proj`),
          o: hfLinear(`${p}.self_attn.out_proj`),
          ln2: norm(`${p}.layer_norm2`),
          fc1: hfLinear(`${p}.mlp.fc1`),
          fc2: hfLinear(`${p}.mlp.fc2`),
        };
      });

    const vc = config.vision;
    const patchRows = vc.numChannels * vc.patchSize * vc.patchSize; // kernel [D, C, p, p] read as [D, C·p·p]
    const vision: VisionTower = {
      patch: linear('vision_model.embeddings.patch_embedding.weight', vc.hiddenSize, patchRows, null),
      classEmbedding: vec('vision_model.embeddings.class_embedding'),
      positions: mat('vision_model.embeddings.position_embedding.weight'),
      preLn: norm('vision_model.pre_layrnorm'),
      blocks: blocks('vision_model', vc.numHiddenLayers),
      postLn: norm('vision_model.post_layernorm'),
      projection: hfLinear('visual_projection', false),
      mean: tf.tensor1d([...CLIP_MEAN]),
      std: tf.tensor1d([...CLIP_STD]),
    };
    owned.push(vision.mean, vision.std);
    const text: TextTower = {
      tokens: mat('text_model.embeddings.token_embedding.weight'),
      positions: mat('text_model.embeddings.position_embedding.weight'),
      blocks: blocks('text_model', config.text.numHiddenLayers),
      finalLn: norm('text_model.final_layer_norm'),
      projection: hfLinear('text_projection', false),
    };
    const logitScale = Math.exp(get('logit_scale').data[0]);
    keep('logit_scale', tf.scalar(get('logit_scale').data[0]));
    return new ClipModel(config, vision, text, logitScale, opts, owned, named);
  }

  /** Sets the image normalisation (a preprocessor_config.json may differ from CLIP's). */
  setNormalisation(mean: readonly number[], std: readonly number[]): void {
    const v = this.vision as { mean: tf.Tensor1D; std: tf.Tensor1D };
    v.mean.dispose();
    v.std.dispose();
    v.mean = tf.tensor1d([...mean]);
    v.std = tf.tensor1d([...std]);
    this.owned.push(v.mean, v.std);
  }

  dispose(): void {
    for (const t of this.owned) if (!t.isDisposed) t.dispose();
  }

  /**
   * Image features (HF `get_image_features`: projected, not normalised).
   * pixels: [B, H, W, 3] in [0,1] → [B, P]
   */
  encodeImages(pixels: tf.Tensor4D, adapters: Adapters | null = null): tf.Tensor2D {
    const vc = this.config.vision;
    const [batch, height, width, channels] = pixels.shape;
    if (height !== vc.imageSize || width !== vc.imageSize || channels !== vc.numChannels) {
      throw invalidArgument(`images are [${height},${width},${channels}], the model takes [${vc.imageSize},${vc.imageSize},${vc.numChannels}]`);
    }
    const p = vc.patchSize;
    const grid = vc.imageSize / p;
    const d = vc.hiddenSize;
    const v = this.vision;
    const normalised = tf.div(tf.sub(pixels, v.mean), v.std); // [B, H, W, 3]
    // patchify as the conv kernel reads a patch: channel-major, then y, then x
    const patches = tf.reshape(
      tf.transpose(tf.reshape(normalised, [batch, grid, p, grid, p, channels]), [0, 1, 3, 5, 2, 4]),
      [batch * grid * grid, channels * p * p],
    ) as tf.Tensor2D; // [B·g², 3p²]
    const embedded = tf.reshape(frozenLinear(patches, v.patch), [batch, grid * grid, d]); // [B, g², D]
    const cls = tf.tile(tf.reshape(v.classEmbedding, [1, 1, d]), [batch, 1, 1]); // [B, 1, D]
    let h = tf.add(tf.concat([cls, embedded], 1), v.positions) as tf.Tensor3D; // [B, 1+g², D]
    h = layerNorm(h, v.preLn[0], v.preLn[1], vc.layerNormEps) as tf.Tensor3D;
    for (const block of v.blocks) h = this.block(h, block, vc, null, adapters);
    const pooled = tf.reshape(tf.slice(h, [0, 0, 0], [batch, 1, d]), [batch, d]); // [B, D] class token
    const normed = layerNorm(pooled, v.postLn[0], v.postLn[1], vc.layerNormEps) as tf.Tensor2D;
    return frozenLinear(normed, v.projection); // [B, P]
  }

  /**
   * Text features (HF `get_text_features`) of token sequences (BOS … EOS, any
   * lengths). Shorter sequences are padded after their end: the causal mask
   * keeps padding out of the EOS token's state, so no attention mask is needed.
   */
  encodeTexts(sequences: readonly (readonly number[])[], adapters: Adapters | null = null): tf.Tensor2D {
    const tc = this.config.text;
    const length = Math.max(...sequences.map((s) => s.length));
    if (sequences.length === 0 || length === 0) throw invalidArgument('no token sequences to encode');
    if (length > tc.maxPositionEmbeddings) {
      throw invalidArgument(`a token sequence has ${length} tokens, the model takes at most ${tc.maxPositionEmbeddings}`);
    }
    const count = sequences.length;
    const ids = new Int32Array(count * length);
    const pool = new Float32Array(count * length);
    sequences.forEach((seq, i) => {
      for (const id of seq) {
        if (!Number.isInteger(id) || id < 0 || id >= tc.vocabSize) {
          throw invalidArgument(`token id ${id} is outside the vocabulary (0..${tc.vocabSize - 1})`);
        }
      }
      ids.set(seq, i * length);
      pool[i * length + eosPosition(seq, tc.eosTokenId)] = 1;
    });
    const t = this.text;
    const d = tc.hiddenSize;
    const idTensor = tf.tensor1d(ids, 'int32');
    // a trainable table needs a gradient: one-hot product instead of gather (wasm lacks UnsortedSegmentSum)
    const looked = this.trainable ? matMulPlain(tf.oneHot(idTensor, tc.vocabSize).toFloat() as tf.Tensor2D, t.tokens, this.explicitTranspose) : tf.gather(t.tokens, idTensor);
    const tokens = tf.reshape(looked, [count, length, d]);
    let h = tf.add(tokens, tf.slice(t.positions, [0, 0], [length, d])) as tf.Tensor3D; // [C, L, D]
    const causal = causalMask(length);
    for (const block of t.blocks) h = this.block(h, block, tc, causal, adapters);
    h = layerNorm(h, t.finalLn[0], t.finalLn[1], tc.layerNormEps) as tf.Tensor3D;
    const pooled = tf.sum(tf.mul(h, tf.tensor3d(pool, [count, length, 1])), 1) as tf.Tensor2D; // [C, D] at EOS
    return frozenLinear(pooled, t.projection); // [C, P]
  }

  /** logits_per_image = exp(logit_scale) · cos(image, text): [B, C] */
  logits(imageFeatures: tf.Tensor2D, textFeatures: tf.Tensor2D): tf.Tensor2D {
    const img = l2Normalise(imageFeatures);
    const txt = l2Normalise(textFeatures);
    const scale = this.logitScaleVariable ? tf.exp(this.logitScaleVariable) : this.logitScale;
    return tf.mul(matMulPlain(img, tf.transpose(txt) as tf.Tensor2D, this.explicitTranspose), scale);
  }

  /** trainable weights (pretraining) */
  variables(): tf.Variable[] {
    return this.trainable ? [...this.named.values()].map((w) => w.tensor as tf.Variable) : [];
  }

  /** current weights in HF layout and names */
  exportWeights(): Map<string, HostTensor> {
    const out = new Map<string, HostTensor>();
    for (const [name, w] of this.named) {
      const data = tf.tidy(() => (w.transposed ? tf.transpose(w.tensor) : w.tensor).dataSync() as Float32Array);
      out.set(name, { shape: [...w.hfShape], data: Float32Array.from(data) });
    }
    return out;
  }

  /** One pre-LN transformer block: x + attn(ln1 x); x + mlp(ln2 x). */
  private block(x: tf.Tensor3D, b: Block, tc: ClipVisionConfig | ClipTextConfig, mask: tf.Tensor | null, adapters: Adapters | null): tf.Tensor3D {
    const [batch, length, d] = x.shape;
    const heads = tc.numAttentionHeads;
    const dh = d / heads;
    const rows = batch * length;
    const lin = (input: tf.Tensor2D, layer: FrozenLinear, name: string) => this.adapted(input, layer, `${b.prefix}.${name}`, adapters, length);

    const h1 = tf.reshape(layerNorm(x, b.ln1[0], b.ln1[1], tc.layerNormEps), [rows, d]) as tf.Tensor2D;
    const q = tf.mul(lin(h1, b.q, 'self_attn.q_proj'), 1 / Math.sqrt(dh)); // [B·L, D], scaled as HF
    const k = lin(h1, b.k, 'self_attn.k_proj');
    const v = lin(h1, b.v, 'self_attn.v_proj');
    const split = (t: tf.Tensor, perm: number[]) => tf.transpose(tf.reshape(t, [batch, length, heads, dh]), perm);
    const qh = split(q, [0, 2, 1, 3]) as tf.Tensor4D; // [B, H, L, dh]
    const kT = split(k, [0, 2, 3, 1]) as tf.Tensor4D; // [B, H, dh, L]
    const vh = split(v, [0, 2, 1, 3]) as tf.Tensor4D; // [B, H, L, dh]
    let scores = matMulPlain(qh, kT, this.explicitTranspose); // [B, H, L, L]
    if (mask) scores = tf.add(scores, mask);
    const context = matMulPlain(tf.softmax(scores) as tf.Tensor4D, vh, this.explicitTranspose); // [B, H, L, dh]
    const merged = tf.reshape(tf.transpose(context, [0, 2, 1, 3]), [rows, d]) as tf.Tensor2D;
    const attended = tf.add(x, tf.reshape(lin(merged, b.o, 'self_attn.out_proj'), [batch, length, d])) as tf.Tensor3D;

    const h2 = tf.reshape(layerNorm(attended, b.ln2[0], b.ln2[1], tc.layerNormEps), [rows, d]) as tf.Tensor2D;
    const hidden = activation(tc.hiddenAct)(lin(h2, b.fc1, 'mlp.fc1')) as tf.Tensor2D;
    return tf.add(attended, tf.reshape(lin(hidden, b.fc2, 'mlp.fc2'), [batch, length, d])) as tf.Tensor3D;
  }

  /** y = x·W0ᵀ + b (+ s·drop(x)·Aᵀ·Bᵀ where the layer is adapted) */
  private adapted(x: tf.Tensor2D, layer: FrozenLinear, key: string, adapters: Adapters | null, rowsPerGroup: number): tf.Tensor2D {
    const y = frozenLinear(x, layer);
    const f = adapters?.factors.get(key);
    if (!adapters || !f) return y;
    const input = adapters.dropout && adapters.dropout.p > 0 ? tf.mul(x, dropoutMask(adapters.dropout, key, rowsPerGroup, x.shape[1])) : x;
    const low = tf.matMul(input, tf.transpose(f.a)); // [N, r]
    return tf.add(y, tf.mul(tf.matMul(low, tf.transpose(f.b)), adapters.scale)) as tf.Tensor2D;
  }
}

/**
 * HF's pooling rule: legacy configs (eos_token_id == 2) pool at the largest
 * id, others at the first EOS — or, as HF's argmax over a mask of zeros, at
 * position 0 when the sequence has none.
 */
export function eosPosition(sequence: readonly number[], eosTokenId: number): number {
  if (eosTokenId === 2) {
    let best = 0;
    for (let i = 1; i < sequence.length; i++) if (sequence[i] > sequence[best]) best = i;
    return best;
  }
  return Math.max(0, sequence.indexOf(eosTokenId));
}

function causalMask(length: number): tf.Tensor2D {
  const m = new Float32Array(length * length);
  for (let i = 0; i < length; i++) for (let j = i + 1; j < length; j++) m[i * length + j] = -1e9;
  return tf.tensor2d(m, [length, length]);
}

function activation(name: HiddenAct): (x: tf.Tensor) => tf.Tensor {
  return name === 'gelu' ? gelu : quickGelu;
}

export function l2Normalise<T extends tf.Tensor>(x: T): T {
  return tf.div(x, tf.sqrt(tf.sum(tf.square(x), -1, true))) as T;
}
