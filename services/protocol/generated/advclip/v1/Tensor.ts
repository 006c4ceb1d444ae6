// Original file: proto/advclip/v1/tensor.proto


/**
 * A dense tensor: raw little-endian float32 values in row-major order.
 * Never `repeated float`: bytes are ~4x smaller on the wire and copy in one go.
 */
export interface Tensor {
  /**
   * prod(shape) * 4 bytes, little-endian IEEE-754 float32, row-major.
   */
  'data'?: (Buffer | Uint8Array | string);
  /**
   * Dimensions, outermost first. [] is a scalar (one value).
   */
  'shape'?: (number)[];
  /**
   * Element type; only "float32" is accepted.
   */
  'dtype'?: (string);
}

/**
 * A dense tensor: raw little-endian float32 values in row-major order.
 * Never `repeated float`: bytes are ~4x smaller on the wire and copy in one go.
 */
export interface Tensor__Output {
  /**
   * prod(shape) * 4 bytes, little-endian IEEE-754 float32, row-major.
   */
  'data': (Buffer);
  /**
   * Dimensions, outermost first. [] is a scalar (one value).
   */
  'shape': (number)[];
  /**
   * Element type; only "float32" is accepted.
   */
  'dtype': (string);
}
