import type { ClipConfig } from './clip-config.ts';

/** Every tensor of HF's CLIPModel state dict and its shape, in the order the model reads them. */
export function expectedClipShapes(config: ClipConfig): Map<string, readonly number[]> {
  const shapes = new Map<string, readonly number[]>();
  const tower = (prefix: string, d: number, f: number, layers: number) => {
    for (let i = 0; i < layers; i++) {
      const p = `${prefix}.encoder.layers.${i}`;
      for (const proj of ['q_proj', 'k_proj', 'v_proj', 'out_proj']) {
        shapes.set(`${p}.self_attn.${proj}.weight`, [d, d]);
        shapes.set(`${p}.self_attn.${proj}.bias`, [d]);
      }
      for (const norm of ['layer_norm1', 'layer_norm2']) {
        shapes.set(`${p}.${norm}.weight`, [d]);
        shapes.set(`${p}.${norm}.bias`, [d]);
      }
      shapes.set(`${p}.mlp.fc1.weight`, [f, d]);
      shapes.set(`${p}.mlp.fc1.bias`, [f]);
      shapes.set(`${p}.mlp.fc2.weight`, [d, f]);
      shapes.set(`${p}.mlp.fc2.bias`, [d]);
    }
  };
  const norm = (name: string, d: number) => {
    shapes.set(`${name}.weight`, [d]);
    shapes.set(`${name}.bias`, [d]);
  };
  const { text: t, vision: v, projectionDim } = config;
  shapes.set('text_model.embeddings.token_embedding.weight', [t.vocabSize, t.hiddenSize]);
  shapes.set('text_model.embeddings.position_embedding.weight', [t.maxPositionEmbeddings, t.hiddenSize]);
  tower('text_model', t.hiddenSize, t.intermediateSize, t.numHiddenLayers);
  norm('text_model.final_layer_norm', t.hiddenSize);
  const grid = v.imageSize / v.patchSize;
  shapes.set('vision_model.embeddings.class_embedding', [v.hiddenSize]);
  shapes.set('vision_model.embeddings.patch_embedding.weight', [v.hiddenSize, v.numChannels, v.patchSize, v.patchSize]);
  shapes.set('vision_model.embeddings.position_embedding.weight', [grid * grid + 1, v.hiddenSize]);
  norm('vision_model.pre_layrnorm', v.hiddenSize); // sic: HF's name
  tower('vision_model', v.hiddenSize, v.intermediateSize, v.numHiddenLayers);
  norm('vision_model.post_layernorm', v.hiddenSize);
  shapes.set('visual_projection.weight', [projectionDim, v.hiddenSize]);
  shapes.set('text_projection.weight', [projectionDim, t.hiddenSize]);
  shapes.set('logit_scale', []);
  return shapes;
}
