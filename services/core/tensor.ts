/** A tensor on the host: float32 values in row-major order and its shape. */
export interface HostTensor {
  readonly shape: readonly number[];
  readonly data: Float32Array;
}

export const sizeOf = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

export function hostTensor(shape: readonly number[], data: Float32Array): HostTensor {
  if (data.length !== sizeOf(shape)) {
    throw new Error(`internal: ${data.length} values do not fill shape [${shape.join(',')}]`);
  }
  return { shape: [...shape], data };
}
