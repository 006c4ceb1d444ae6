// Original file: proto/advclip/v1/coordinator.proto

import type { Long } from '@grpc/proto-loader';

export interface AdapterBlob {
  'version'?: (number | string | Long);
  /**
   * SHA-256 (hex) of `safetensors`.
   */
  'sha256'?: (string);
  /**
   * The adapter as a safetensors file (PEFT key names).
   */
  'safetensors'?: (Buffer | Uint8Array | string);
}

export interface AdapterBlob__Output {
  'version': (number);
  /**
   * SHA-256 (hex) of `safetensors`.
   */
  'sha256': (string);
  /**
   * The adapter as a safetensors file (PEFT key names).
   */
  'safetensors': (Buffer);
}
