/**
 * CLIP-like initial weights in HF layout: normal(0, 0.02) embeddings,
 * normal(0, 1/√fan_in) linears with the residual-branch outputs (out_proj,
 * fc2) further scaled by 1/√(2·layers) as GPT-2 and OpenAI CLIP do, zero
 * biases, identity LayerNorms, logit_scale from the config (ln 1/0.07).
 */
import type { ClipConfig } from '../../services/core/clip-config.ts';
import { expectedClipShapes } from '../../services/core/clip-shapes.ts';
import { RandomStream, wordOf } from '../../services/core/rng.ts';
import { hostTensor, sizeOf, type HostTensor } from '../../services/core/tensor.ts';

const EMBEDDING_STD = 0.02;

function stdOf(name: string, shape: readonly number[], config: ClipConfig): number {
  if (name.includes('embedding') && !name.includes('patch_embedding')) return EMBEDDING_STD;
  const fanIn = sizeOf(shape.slice(1));
  const layers = name.startsWith('vision_model') ? config.vision.numHiddenLayers : config.text.numHiddenLayers;
  const residual = /out_proj\.weight$|fc2\.weight$/.test(name) ? 1 / Math.sqrt(2 * layers) : 1;
  return residual / Math.sqrt(fanIn);
}

export function clipLikeWeights(config: ClipConfig, seed: number): Map<string, HostTensor> {
  const weights = new Map<string, HostTensor>();
  for (const [name, shape] of expectedClipShapes(config)) {
    const data = new Float32Array(sizeOf(shape));
    if (name === 'logit_scale') data[0] = config.logitScaleInitValue;
    else if (/(layer_?norm\d?|layrnorm)\.weight$/.test(name)) data.fill(1);
    else if (!name.endsWith('.bias')) {
      const rng = RandomStream.of(seed, wordOf(name));
      const std = stdOf(name, shape, config);
      for (let i = 0; i < data.length; i++) data[i] = std * rng.normal();
    }
    weights.set(name, hostTensor(shape, data));
  }
  return weights;
}
