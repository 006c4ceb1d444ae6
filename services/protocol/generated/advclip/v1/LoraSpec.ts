// Original file: proto/advclip/v1/run.proto


export interface LoraSpec {
  /**
   * Rank r of A [r, in] and B [out, r].
   */
  'rank'?: (number);
  /**
   * α of the scaling s = α/r (α/√r with rslora).
   */
  'alpha'?: (number | string);
  'rslora'?: (boolean);
  /**
   * Dropout probability on the LoRA branch input, in [0, 1).
   */
  'dropout'?: (number | string);
  /**
   * Adapted linears: q_proj, k_proj, v_proj, out_proj, fc1, fc2.
   */
  'targets'?: (string)[];
  /**
   * Adapted towers: vision, text.
   */
  'towers'?: (string)[];
  /**
   * Adapted layer indices; used only when every_layer is false.
   */
  'layers'?: (number)[];
  /**
   * Adapt every layer of the towers (then `layers` is empty).
   */
  'every_layer'?: (boolean);
  /**
   * Initialisation of A: kaiming-uniform or gaussian.
   */
  'init'?: (string);
}

export interface LoraSpec__Output {
  /**
   * Rank r of A [r, in] and B [out, r].
   */
  'rank': (number);
  /**
   * α of the scaling s = α/r (α/√r with rslora).
   */
  'alpha': (number);
  'rslora': (boolean);
  /**
   * Dropout probability on the LoRA branch input, in [0, 1).
   */
  'dropout': (number);
  /**
   * Adapted linears: q_proj, k_proj, v_proj, out_proj, fc1, fc2.
   */
  'targets': (string)[];
  /**
   * Adapted towers: vision, text.
   */
  'towers': (string)[];
  /**
   * Adapted layer indices; used only when every_layer is false.
   */
  'layers': (number)[];
  /**
   * Adapt every layer of the towers (then `layers` is empty).
   */
  'every_layer': (boolean);
  /**
   * Initialisation of A: kaiming-uniform or gaussian.
   */
  'init': (string);
}
