/** CLIP hyper-parameters, as Hugging Face's `CLIPConfig` names them (camelCased). */
export type HiddenAct = 'quick_gelu' | 'gelu';

interface TowerConfig {
  readonly hiddenSize: number;
  readonly intermediateSize: number;
  readonly numHiddenLayers: number;
  readonly numAttentionHeads: number;
  readonly layerNormEps: number;
  readonly hiddenAct: HiddenAct;
}

export interface ClipTextConfig extends TowerConfig {
  readonly vocabSize: number;
  readonly maxPositionEmbeddings: number;
  readonly eosTokenId: number;
  readonly bosTokenId: number;
  readonly padTokenId: number;
}

export interface ClipVisionConfig extends TowerConfig {
  readonly imageSize: number;
  readonly patchSize: number;
  readonly numChannels: number;
}

export interface ClipConfig {
  readonly text: ClipTextConfig;
  readonly vision: ClipVisionConfig;
  readonly projectionDim: number;
  /** initial value of logit_scale (ln 100 for OpenAI's); the checkpoint's value wins. */
  readonly logitScaleInitValue: number;
}
