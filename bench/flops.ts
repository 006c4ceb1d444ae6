/**
 * The floating-point work of one AdvCLIP-LoRA step (universal δ, exact sync:
 * the τ+2 rounds of ALGORITHM.md), counted from the architecture — what
 * "FLOP/s of a step" divides by. Assumptions:
 *
 *  - Only matrix products count, 2·m·n·k each: they are >98 % of the work;
 *    LayerNorm, softmax, GELU and adds are left out (as the anchor does).
 *  - Attention is computed in full (T×T per head) in both towers; the text
 *    tower's causal mask is applied to the full scores, as tfjs and the
 *    anchor's torch 1.13 do.
 *  - Backward of a product with a frozen weight needs only the input
 *    gradient: as many FLOPs as the forward. A product of two activations
 *    (Q·Kᵀ, P·V) needs both operand gradients: twice the forward.
 *  - LoRA site (x·Aᵀ then ·Bᵀ, rank r): forward 2·t·r·(in+out). Its
 *    input-gradient path costs the same; the factor gradients add
 *    2·t·r·out (dB) and 2·t·r·in (dA).
 *  - δ round: image forward and input-gradient backward through every layer
 *    and the patch embedding, down to the pixels.
 *  - LoRA round: image forward and backward down to the first adapted layer;
 *    that layer needs no gradient w.r.t. its input (its frozen q/k/v and
 *    LoRA input products are skipped), layers below it and the patch
 *    embedding need none at all — as tfjs' gradient pruning does.
 *  - Text tower: the class features once per step (forward, cached for the
 *    step's rounds), then the text round's forward + backward for the text
 *    LoRA gradients (the VJP with Σ ∂F/∂T) — the same three passes as the
 *    anchor. Every prompt is the full context length (as `bench step`'s).
 *  - Logits: 2·B·P·C per image round forward; backward to the image
 *    features in δ rounds, and to the text features as well in the LoRA round.
 */
import type { ClipConfig } from '../services/core/clip-config.ts';
import { loraSites, type LoraConfig, type LoraSite, type Tower } from '../services/core/lora.ts';

export interface StepShape {
  readonly batch: number;
  readonly tau: number;
  /** class prompts C */
  readonly prompts: number;
}

/** FLOPs per image (image parts) or per prompt (text parts), and the step's total. */
export interface StepFlops {
  readonly imageForward: number;
  readonly imageDeltaBackward: number;
  readonly imageLoraBackward: number;
  readonly textForward: number;
  readonly textLoraBackward: number;
  /** logits of all rounds, forward and backward */
  readonly logits: number;
  readonly total: number;
}

interface TowerShape {
  readonly tokens: number;
  readonly width: number;
  readonly mlp: number;
  readonly layers: number;
  /** the projection after pooling: width → projectionDim, one token */
  readonly projection: number;
  /** adapted sites of each layer */
  readonly sitesOf: (layer: number) => readonly LoraSite[];
}

function towerShape(model: ClipConfig, lora: LoraConfig, tower: Tower): TowerShape {
  const t = tower === 'vision' ? model.vision : model.text;
  const sites = loraSites(model, lora).filter((s) => s.tower === tower);
  const tokens = tower === 'vision' ? (model.vision.imageSize / model.vision.patchSize) ** 2 + 1 : model.text.maxPositionEmbeddings;
  return {
    tokens,
    width: t.hiddenSize,
    mlp: t.intermediateSize,
    layers: t.numHiddenLayers,
    projection: 2 * t.hiddenSize * model.projectionDim,
    sitesOf: (layer) => sites.filter((s) => s.layer === layer),
  };
}

/** q, k, v, out (d×d each) and fc1, fc2 (d×mlp each) over all tokens */
const denseOf = (s: TowerShape) => 2 * s.tokens * (4 * s.width * s.width + 2 * s.width * s.mlp);
/** Q·Kᵀ and P·V over all heads: 2·T²·d each */
const attentionOf = (s: TowerShape) => 4 * s.tokens * s.tokens * s.width;
/** one LoRA product over all tokens (x·Aᵀ: in→r, or ·Bᵀ: r→out) */
const loraProduct = (s: TowerShape, dim: number, rank: number) => 2 * s.tokens * rank * dim;

const layerForward = (s: TowerShape, rank: number, layer: number) =>
  denseOf(s) + attentionOf(s) + s.sitesOf(layer).reduce((n, site) => n + loraProduct(s, site.inDim, rank) + loraProduct(s, site.outDim, rank), 0);

function towerForward(s: TowerShape, rank: number): number {
  let n = s.projection;
  for (let l = 0; l < s.layers; l++) n += layerForward(s, rank, l);
  return n;
}

/** backward of every layer, input gradients only (frozen weights, LoRA factors included as constants) */
function inputGradientBackward(s: TowerShape, rank: number): number {
  let n = s.projection;
  for (let l = 0; l < s.layers; l++) n += layerForward(s, rank, l) + attentionOf(s);
  return n;
}

/** backward for the LoRA factor gradients: down to the first adapted layer, which needs no input gradient */
function loraBackward(s: TowerShape, rank: number): number {
  const adapted = [...Array(s.layers).keys()].filter((l) => s.sitesOf(l).length > 0);
  if (adapted.length === 0) return 0;
  const first = adapted[0];
  let n = s.projection;
  for (let l = first; l < s.layers; l++) {
    n += denseOf(s) + 2 * attentionOf(s);
    for (const site of s.sitesOf(l)) {
      // v = dY·B and dB = dYᵀ·(x·Aᵀ): out-side; dA = vᵀ·x: in-side; dx = v·A only above the first adapted layer
      n += 2 * loraProduct(s, site.outDim, rank) + loraProduct(s, site.inDim, rank);
      if (l > first) n += loraProduct(s, site.inDim, rank);
    }
    // the first adapted layer's frozen q, k, v input gradients feed nothing trained (LoRA on q,k,v, as the bench's)
    if (l === first) n -= 3 * 2 * s.tokens * s.width * s.width;
  }
  return n;
}

export function stepFlops(model: ClipConfig, lora: LoraConfig, shape: StepShape): StepFlops {
  const vision = towerShape(model, lora, 'vision');
  const text = towerShape(model, lora, 'text');
  const r = lora.rank;
  const v = model.vision;
  const patches = vision.tokens - 1;
  const patchEmbedding = 2 * patches * (v.numChannels * v.patchSize * v.patchSize) * v.hiddenSize;

  const imageForward = patchEmbedding + towerForward(vision, r);
  const imageDeltaBackward = inputGradientBackward(vision, r) + patchEmbedding;
  const imageLoraBackward = loraBackward(vision, r);
  const textForward = towerForward(text, r);
  const textLoraBackward = loraBackward(text, r);

  const { batch: b, tau, prompts: c } = shape;
  const logitProduct = 2 * b * model.projectionDim * c;
  const logits = tau * 2 * logitProduct + 3 * logitProduct;
  const total =
    c * textForward + // class features, once per step
    tau * b * (imageForward + imageDeltaBackward) + // δ rounds
    b * (imageForward + imageLoraBackward) + // LoRA round
    c * (textForward + textLoraBackward) + // text round
    logits;
  return { imageForward, imageDeltaBackward, imageLoraBackward, textForward, textLoraBackward, logits, total };
}
