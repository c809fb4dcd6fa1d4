import { createHash } from 'node:crypto';
import { PipelineError } from '../../errors.js';
import { fromHalfBits } from '../../tensor/float16.js';
import type { NoiseDtype } from './randn.js';
import { shapeNumel } from './randn.js';

export interface NoiseSummary {
  shape: number[];
  dtype: NoiseDtype;
  /** The first 16 values (fewer if the tensor is smaller). */
  head: number[];
  /** The float64 sum of all values, correctly rounded (like Python's `math.fsum`). */
  sum: number;
  /** SHA-256 (hex) of the little-endian element bytes in C order. */
  sha256: string;
}

/**
 * Correctly rounded sum of finite values: Shewchuk's non-overlapping partials with the final
 * half-way correction of CPython's `math.fsum`.
 */
export function exactSum(count: number, valueAt: (i: number) => number): number {
  const partials: number[] = [];
  for (let k = 0; k < count; k++) {
    let x = valueAt(k);
    let used = 0;
    for (let p = 0; p < partials.length; p++) {
      let y = partials[p]!;
      if (Math.abs(x) < Math.abs(y)) {
        const t = x;
        x = y;
        y = t;
      }
      const hi = x + y;
      const lo = y - (hi - x);
      if (lo !== 0) partials[used++] = lo;
      x = hi;
    }
    partials.length = used;
    partials.push(x);
  }
  let n = partials.length;
  if (n === 0) return 0;
  let hi = partials[--n]!;
  let lo = 0;
  while (n > 0) {
    const x = hi;
    const y = partials[--n]!;
    hi = x + y;
    lo = y - (hi - x);
    if (lo !== 0) break;
  }
  // If the rest of the partials push the value past a half-way point, round away from hi.
  if (n > 0 && ((lo < 0 && partials[n - 1]! < 0) || (lo > 0 && partials[n - 1]! > 0))) {
    const y = lo * 2;
    const x = hi + y;
    if (y === x - hi) hi = x;
  }
  return hi;
}

const littleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function littleEndianBytes(data: Float32Array | Uint16Array): Uint8Array {
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (littleEndian) return bytes;
  const copy = new Uint8Array(bytes.length);
  const w = data.BYTES_PER_ELEMENT;
  for (let i = 0; i < bytes.length; i += w) {
    for (let b = 0; b < w; b++) copy[i + b] = bytes[i + w - 1 - b]!;
  }
  return copy;
}

/** The summary printed by `sd3 noise`. */
export function noiseSummary(
  shape: readonly number[],
  dtype: NoiseDtype,
  data: Float32Array | Uint16Array,
): NoiseSummary {
  const n = shapeNumel(shape);
  const expected = dtype === 'float32' ? 'Float32Array' : 'Uint16Array';
  if (data.constructor.name !== expected || data.length !== n) {
    throw new PipelineError(
      'input_invalid',
      `data: expected a ${expected} of ${n} elements for ${dtype} [${shape.join(', ')}], ` +
        `found a ${data.constructor.name} of ${data.length}`,
    );
  }
  const valueAt = dtype === 'float32' ? (i: number) => data[i]! : (i: number) => fromHalfBits(data[i]!);
  const head: number[] = [];
  for (let i = 0; i < Math.min(16, n); i++) head.push(valueAt(i));
  return {
    shape: [...shape],
    dtype,
    head,
    sum: exactSum(n, valueAt),
    sha256: createHash('sha256').update(littleEndianBytes(data)).digest('hex'),
  };
}
