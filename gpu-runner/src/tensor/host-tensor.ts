/**
 * The pipeline keeps every float tensor as a Float32Array of values; for float16 models those
 * values are exactly representable halves. These helpers convert at the model boundary.
 */
import type { HostTensor, TensorData } from '../runtime/onnx-backend.js';
import { float32ToHalfArray, halfArrayToFloat32 } from './float16.js';

export type FloatDtype = 'float32' | 'float16';

export function floatTensor(values: Float32Array, dims: readonly number[], dtype: FloatDtype): HostTensor {
  return { dtype, dims, data: dtype === 'float16' ? float32ToHalfArray(values) : values };
}

/** Values of a float tensor returned by a model, as float32. */
export function tensorValues(t: HostTensor): Float32Array {
  if (t.dtype === 'float16') return halfArrayToFloat32(t.data as Uint16Array);
  if (t.dtype === 'float32') return t.data as Float32Array;
  throw new Error(`expected a float tensor, got ${t.dtype}`);
}

export function int64Tensor(ids: readonly number[], dims: readonly number[]): HostTensor {
  const data: TensorData = BigInt64Array.from(ids, (v) => BigInt(v));
  return { dtype: 'int64', dims, data };
}

export function product(dims: readonly number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}
