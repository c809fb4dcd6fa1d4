/**
 * IEEE 754 binary16 <-> binary32 conversion on bit patterns. Node 20 has no Float16Array, so
 * onnxruntime-node takes and returns float16 tensors as Uint16Array bit patterns.
 */

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** Rounds a number to the nearest binary16 (ties to even) and returns its bit pattern. */
export function toHalfBits(value: number): number {
  f32[0] = value;
  const x = u32[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 : 0); // Inf / NaN
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00; // overflow -> Inf
  if (e <= 0) {
    if (e < -10) return sign; // underflow -> signed zero
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rest = mant & ((1 << shift) - 1);
    let h = mant >>> shift;
    if (rest > half || (rest === half && (h & 1) === 1)) h += 1;
    return sign | h;
  }
  let h = sign | (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (h & 1) === 1)) h += 1; // carry into exponent is correct
  return h;
}

/** The value of a binary16 bit pattern. */
export function fromHalfBits(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** Rounds to the nearest binary16 value, returned as a number (the `half(x)` of the spec). */
export function roundToHalf(value: number): number {
  return fromHalfBits(toHalfBits(value));
}

/**
 * Bulk float32 -> half bits with round-to-nearest-even. Works on the float32 bit patterns in one
 * integer pass; only values outside the normal half range take the scalar path.
 */
export function float32ToHalfArray(src: Float32Array, dst = new Uint16Array(src.length)): Uint16Array {
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0; i < bits.length; i++) {
    const b = bits[i]!;
    const exp = (b >>> 23) & 0xff;
    // Normal halves: float32 exponents 113..142 (2^-14 .. < 2^16), rounding may carry into Inf.
    if (exp > 112 && exp < 143) {
      const r = b + 0xfff + ((b >>> 13) & 1);
      dst[i] = ((r >>> 16) & 0x8000) | (((r & 0x7fffffff) >>> 13) - 0x1c000);
    } else {
      dst[i] = toHalfBits(src[i]!);
    }
  }
  return dst;
}

const HALF_TABLE = (() => {
  const t = new Float32Array(65536);
  for (let i = 0; i < 65536; i++) t[i] = fromHalfBits(i);
  return t;
})();

export function halfArrayToFloat32(src: Uint16Array, dst = new Float32Array(src.length)): Float32Array {
  const table = HALF_TABLE;
  for (let i = 0; i < src.length; i++) dst[i] = table[src[i]!]!;
  return dst;
}

/**
 * Rounds a float32 value (a number already rounded with Math.fround) to the nearest half,
 * ties to even, without touching typed-array scratch memory: Veltkamp splitting keeps the top 11
 * bits of the significand in the normal range, a magic-number add handles the subnormal range.
 */
export function roundFloat32ToHalf(y: number): number {
  const a = Math.abs(y);
  if (a < 6.103515625e-5) {
    // Subnormal halves are multiples of 2^-24: adding 1.5 * 2^28 rounds to that grid (ties even).
    const r = y + 402653184 - 402653184;
    return r === 0 ? y * 0 : r;
  }
  if (a < 65520) {
    const c = y * 4398046511105; // 2^42 + 1
    return c - (c - y);
  }
  return Number.isNaN(a) ? y : y > 0 ? Number.POSITIVE_INFINITY : Number.NEGATIVE_INFINITY;
}
