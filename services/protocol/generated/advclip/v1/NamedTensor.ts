// Original file: proto/advclip/v1/tensor.proto

import type { Tensor as _advclip_v1_Tensor, Tensor__Output as _advclip_v1_Tensor__Output } from '../../advclip/v1/Tensor.ts';

/**
 * A tensor with a name, e.g. "delta" or a LoRA parameter key such as
 * "text_model.encoder.layers.3.self_attn.q_proj.lora_A.weight".
 */
export interface NamedTensor {
  'name'?: (string);
  'tensor'?: (_advclip_v1_Tensor | null);
}

/**
 * A tensor with a name, e.g. "delta" or a LoRA parameter key such as
 * "text_model.encoder.layers.3.self_attn.q_proj.lora_A.weight".
 */
export interface NamedTensor__Output {
  'name': (string);
  'tensor': (_advclip_v1_Tensor__Output | null);
}
