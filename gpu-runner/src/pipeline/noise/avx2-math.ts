/**
 * Bit-exact float32 models of `log256_ps` and `sincos256_ps` (the Cephes-derived AVX routines that
 * PyTorch's x86 AVX2 `normal_` kernel uses), including the multiply/add pairs that the PyTorch builds
 * contract into FMA instructions. All inputs and results are float32 values held in numbers.
 *
 * Each routine exists twice: `logAvx2` / `sincosAvx2` use the exact `fma32` and are right for any
 * input; the `...OnGrid` copies evaluate each FMA as `fround(a * b + c)`, which is several times faster.
 * That single rounding from float64 is only wrong when the float64 sum is inexact and lands on a float32
 * midpoint, and on the inputs the kernel can produce (u1 = 1 − k·2^−24, θ = fl(2π·k·2^−24),
 * k < 2^24) it never does: the tests compare both versions on those inputs (all 2^24 of them with
 * NOISE_EXHAUSTIVE=1). Keep the two copies step for step identical.
 */

const fround = Math.fround;

/**
 * `fma(a, b, c)` for float32 `a`, `b`, `c` with a single rounding to float32. The product of two
 * float32 values is exact in float64, so only the float64 sum can be inexact; that only changes the
 * float32 result when the sum lands exactly on a float32 rounding midpoint, where the two-sum error
 * term tells which way the exact value lies.
 */
export function fma32(a: number, b: number, c: number): number {
  const p = a * b;
  const s = p + c;
  const r = fround(s);
  // A float32 s is the right answer; otherwise, if s is a float32 rounding midpoint, `other` is the
  // float32 on its other side, and if it is not, `other` is no float32 at all.
  const other = 2 * s - r;
  if (r === s || fround(other) !== other) return r;
  return resolveMidpoint(p, c, s, r, other);
}

/** Rare path of `fma32`: pick the neighbour on the side of the exact value `p + c`. */
function resolveMidpoint(p: number, c: number, s: number, r: number, other: number): number {
  const bb = s - p;
  const err = p - (s - bb) + (c - bb);
  if (err === 0) return r; // exact tie: fround already rounded it to even
  return err > 0 === other > r ? other : r;
}

// Decimal constants are the spec's, shortened to the digits that already pick the same float64.
const MIN_NORM_POS = 2 ** -126;
const SQRTHF = fround(Math.SQRT1_2); // the spec's 0.707106781186547524
const P0 = fround(7.0376836292e-2);
const P1 = fround(-1.151461031e-1);
const P2 = fround(1.167699874e-1);
const P3 = fround(-1.2420140846e-1);
const P4 = fround(1.4249322787e-1);
const P5 = fround(-1.6668057665e-1);
const P6 = fround(2.0000714765e-1);
const P7 = fround(-2.4999993993e-1);
const P8 = fround(3.3333331174e-1);
const Q1 = fround(-2.1219444e-4);
const Q2 = fround(0.693359375);

const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

/** `log256_ps` for one lane; `x` must be a positive float32 (the kernel only feeds it (0, 1]). */
export function logAvx2(x: number): number {
  scratchF32[0] = Math.max(x, MIN_NORM_POS);
  const bits = scratchU32[0]!;
  let e = ((bits >>> 23) & 0xff) - 126;
  // Same bits with the exponent of 0.5: the mantissa in [0.5, 1).
  scratchU32[0] = (bits & 0x807fffff) | 0x3f000000;
  let m = scratchF32[0]!;
  if (m < SQRTHF) {
    e -= 1;
    m = fround(fround(m - 1) + m);
  } else {
    m = fround(m - 1);
  }
  const z = fround(m * m);
  let y = P0;
  y = fma32(y, m, P1);
  y = fma32(y, m, P2);
  y = fma32(y, m, P3);
  y = fma32(y, m, P4);
  y = fma32(y, m, P5);
  y = fma32(y, m, P6);
  y = fma32(y, m, P7);
  y = fma32(y, m, P8);
  y = fround(y * m);
  y = fma32(y, z, fround(e * Q1));
  y = fma32(-z, 0.5, y);
  const r = fround(m + y);
  return fma32(e, Q2, r);
}

/** `logAvx2` for the kernel's inputs u1 = 1 − k·2^−24 (see the module comment). */
export function logAvx2OnGrid(x: number): number {
  scratchF32[0] = Math.max(x, MIN_NORM_POS);
  const bits = scratchU32[0]!;
  let e = ((bits >>> 23) & 0xff) - 126;
  // Same bits with the exponent of 0.5: the mantissa in [0.5, 1).
  scratchU32[0] = (bits & 0x807fffff) | 0x3f000000;
  let m = scratchF32[0]!;
  if (m < SQRTHF) {
    e -= 1;
    m = fround(fround(m - 1) + m);
  } else {
    m = fround(m - 1);
  }
  const z = fround(m * m);
  let y = P0;
  y = fround(y * m + P1);
  y = fround(y * m + P2);
  y = fround(y * m + P3);
  y = fround(y * m + P4);
  y = fround(y * m + P5);
  y = fround(y * m + P6);
  y = fround(y * m + P7);
  y = fround(y * m + P8);
  y = fround(y * m);
  y = fround(y * z + fround(e * Q1));
  y = fround(-z * 0.5 + y);
  const r = fround(m + y);
  return fround(e * Q2 + r);
}

const FOPI = fround(1.27323954473516);
const MINUS_DP1 = fround(-0.78515625);
const MINUS_DP2 = fround(-2.4187564849853516e-4);
const MINUS_DP3 = fround(-3.774894977445941e-8);
const K0 = fround(2.443315711809948e-5);
const K1 = fround(-1.388731625493765e-3);
const K2 = fround(4.166664568298827e-2);
const S0 = fround(-1.9515295891e-4);
const S1 = fround(8.3321608736e-3);
const S2 = fround(-1.6666654611e-1);

/** Results of the last `sincosAvx2` call (kept in module slots so the hot loop allocates nothing). */
export const sincosOut = { sin: 0, cos: 0 };

/** `sincos256_ps` for one lane and a float32 `theta >= 0`; writes `sincosOut`. */
export function sincosAvx2(theta: number): void {
  const yScaled = fround(theta * FOPI);
  let j = yScaled | 0; // truncation; yScaled is in [0, 8]
  j = (j + 1) & ~1;
  const y = j; // int -> float32 is exact for these small values
  let x = fma32(y, MINUS_DP1, theta);
  x = fma32(y, MINUS_DP2, x);
  x = fma32(y, MINUS_DP3, x);
  const z = fround(x * x);

  let c = fma32(fma32(K0, z, K1), z, K2);
  c = fround(c * z);
  c = fma32(c, z, -fround(z * 0.5));
  c = fround(c + 1);

  let s = fma32(fma32(S0, z, S1), z, S2);
  s = fround(s * z);
  s = fma32(s, x, x);

  // Branch-free on purpose: j is random, so branches here would mispredict half the time.
  // The kernel selects by masking and adding both halves, i.e. adds +0 to the chosen value; c is
  // in [0.7, 1], so c·0 is +0 and s·1 + c·0 is exactly that, while c·1 + s·0 is c (c is never 0).
  const pick = (j >> 1) & 1; // 0: sin polynomial gives sin, 1: the two swap
  const sinV = s * (1 - pick) + c * pick;
  const cosV = c * (1 - pick) + s * pick;
  // Sign flips (exact, also for zeros): sin if j & 4, cos if (j − 2) & 4 is clear.
  sincosOut.sin = sinV * (1 - (j & 4) / 2);
  sincosOut.cos = cosV * ((((j - 2) & 4) >> 1) - 1);
}

/** `sincosAvx2` for the kernel's inputs θ = fl(2π·k·2^−24) (see the module comment). */
export function sincosAvx2OnGrid(theta: number): void {
  const yScaled = fround(theta * FOPI);
  let j = yScaled | 0; // truncation; yScaled is in [0, 8]
  j = (j + 1) & ~1;
  const y = j; // int -> float32 is exact for these small values
  let x = fround(y * MINUS_DP1 + theta);
  x = fround(y * MINUS_DP2 + x);
  x = fround(y * MINUS_DP3 + x);
  const z = fround(x * x);

  let c = fround(fround(K0 * z + K1) * z + K2);
  c = fround(c * z);
  c = fround(c * z + -fround(z * 0.5));
  c = fround(c + 1);

  let s = fround(fround(S0 * z + S1) * z + S2);
  s = fround(s * z);
  s = fround(s * x + x);

  // Branch-free on purpose: j is random, so branches here would mispredict half the time.
  // The kernel selects by masking and adding both halves, i.e. adds +0 to the chosen value; c is
  // in [0.7, 1], so c·0 is +0 and s·1 + c·0 is exactly that, while c·1 + s·0 is c (c is never 0).
  const pick = (j >> 1) & 1; // 0: sin polynomial gives sin, 1: the two swap
  const sinV = s * (1 - pick) + c * pick;
  const cosV = c * (1 - pick) + s * pick;
  // Sign flips (exact, also for zeros): sin if j & 4, cos if (j − 2) & 4 is clear.
  sincosOut.sin = sinV * (1 - (j & 4) / 2);
  sincosOut.cos = cosV * ((((j - 2) & 4) >> 1) - 1);
}
