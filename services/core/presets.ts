/**
 * Architectures by name (for `bench step --arch` and tests) and random
 * weights in HF layout, so a real-size model can be built without files.
 */
import type { ClipConfig, ClipTextConfig, ClipVisionConfig } from './clip-config.ts';
import { expectedClipShapes } from './clip-shapes.ts';
import { invalidArgument } from './errors.ts';
import { RandomStream, wordOf } from './rng.ts';
import type { HostTensor } from './tensor.ts';

export const ArchNames = ['vit-b-32', 'vit-b-16', 'tiny'] as const;
export type ArchName = (typeof ArchNames)[number];

const openaiText: ClipTextConfig = {
  vocabSize: 49408,
  hiddenSize: 512,
  intermediateSize: 2048,
  numHiddenLayers: 12,
  numAttentionHeads: 8,
  maxPositionEmbeddings: 77,
  layerNormEps: 1e-5,
  hiddenAct: 'quick_gelu',
  bosTokenId: 0,
  eosTokenId: 2,
  padTokenId: 1,
};

const vitB = (patchSize: number): ClipVisionConfig => ({
  hiddenSize: 768,
  intermediateSize: 3072,
  numHiddenLayers: 12,
  numAttentionHeads: 12,
  imageSize: 224,
  patchSize,
  numChannels: 3,
  layerNormEps: 1e-5,
  hiddenAct: 'quick_gelu',
});

export function archConfig(name: string): ClipConfig {
  switch (name) {
    case 'vit-b-32':
      return { text: openaiText, vision: vitB(32), projectionDim: 512, logitScaleInitValue: Math.log(100) };
    case 'vit-b-16':
      return { text: openaiText, vision: vitB(16), projectionDim: 512, logitScaleInitValue: Math.log(100) };
    case 'tiny':
      return {
        text: { ...openaiText, vocabSize: 512, hiddenSize: 32, intermediateSize: 64, numHiddenLayers: 2, numAttentionHeads: 4, maxPositionEmbeddings: 16, eosTokenId: 511, bosTokenId: 510, padTokenId: 511 },
        vision: { ...vitB(8), hiddenSize: 32, intermediateSize: 64, numHiddenLayers: 2, numAttentionHeads: 4, imageSize: 32 },
        projectionDim: 16,
        logitScaleInitValue: Math.log(100),
      };
    default:
      throw invalidArgument(`unknown architecture "${name}": expected one of ${ArchNames.join(', ')}`);
  }
}

/** Random weights with CLIP-like scales (LayerNorm at identity, logit_scale from the config). */
export function randomClipWeights(c: ClipConfig, seed: number): Map<string, HostTensor> {
  const weights = new Map<string, HostTensor>();
  for (const [name, shape] of expectedClipShapes(c)) {
    const size = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(size);
    if (name === 'logit_scale') data[0] = c.logitScaleInitValue;
    else if (/layer_?norm\d?\.weight$|layrnorm\.weight$/.test(name)) data.fill(1);
    else if (!name.endsWith('.bias')) {
      const rng = RandomStream.of(seed, wordOf(name));
      const fanIn = shape.length >= 2 ? shape.slice(1).reduce((a, b) => a * b, 1) : shape[0];
      const std = name.includes('embedding') ? 0.02 : 1 / Math.sqrt(fanIn);
      // uniform with that standard deviation: as good as normal here, and fast for 150M values
      const half = std * Math.sqrt(3);
      for (let i = 0; i < size; i++) data[i] = (2 * rng.uniform() - 1) * half;
    }
    weights.set(name, { shape, data });
  }
  return weights;
}
