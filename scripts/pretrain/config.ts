/**
 * The shipped small CLIP's architecture: 64×64 images in 8×8 patches, two
 * 4-layer towers, a 32-token text context and the synthetic captions' BPE
 * vocabulary (its <|endoftext|> id as eos_token_id, so pooling reads the
 * first EOS as HF does for non-legacy configs).
 */
import type { ClipConfig } from '../../services/core/clip-config.ts';

export interface PretrainArch {
  readonly imageSize: number;
  readonly patchSize: number;
  readonly visionWidth: number;
  readonly visionLayers: number;
  readonly textWidth: number;
  readonly textLayers: number;
  /** head width 32 in both towers: heads = width / 32 */
  readonly headWidth: number;
  readonly mlpRatio: number;
  readonly contextLength: number;
  readonly projectionDim: number;
}

export const SMALL_ARCH: PretrainArch = Object.freeze({
  imageSize: 64,
  patchSize: 8,
  visionWidth: 128,
  visionLayers: 4,
  textWidth: 128,
  textLayers: 4,
  headWidth: 32,
  mlpRatio: 4,
  contextLength: 32,
  projectionDim: 128,
});

export interface VocabularyIds {
  readonly vocabSize: number;
  readonly bosTokenId: number;
  readonly eosTokenId: number;
}

/** CLIP's initial temperature 0.07. */
export const LOGIT_SCALE_INIT = Math.log(1 / 0.07);

export function pretrainClipConfig(arch: PretrainArch, vocab: VocabularyIds): ClipConfig {
  const tower = (width: number, layers: number) => ({
    hiddenSize: width,
    intermediateSize: width * arch.mlpRatio,
    numHiddenLayers: layers,
    numAttentionHeads: width / arch.headWidth,
    layerNormEps: 1e-5,
    hiddenAct: 'quick_gelu' as const,
  });
  return {
    text: {
      ...tower(arch.textWidth, arch.textLayers),
      vocabSize: vocab.vocabSize,
      maxPositionEmbeddings: arch.contextLength,
      bosTokenId: vocab.bosTokenId,
      eosTokenId: vocab.eosTokenId,
      padTokenId: vocab.eosTokenId,
    },
    vision: { ...tower(arch.visionWidth, arch.visionLayers), imageSize: arch.imageSize, patchSize: arch.patchSize, numChannels: 3 },
    projectionDim: arch.projectionDim,
    logitScaleInitValue: LOGIT_SCALE_INIT,
  };
}
