/**
 * `torch.randn(shape, generator=g, dtype=...)` on the CPU, bit-identical to PyTorch's x86 AVX2 build:
 * the same kernel choice (16-wide block Box–Muller for n >= 16, scalar double Box–Muller with a cached
 * normal below that), the same uniforms, and the same float32 / float16 arithmetic.
 */
import { PipelineError } from '../../errors.js';
import { roundToHalf, toHalfBits } from '../../tensor/float16.js';
import { logAvx2OnGrid, sincosAvx2OnGrid, sincosOut } from './avx2-math.js';
import type { TorchGenerator } from './torch-generator.js';

export type NoiseDtype = 'float32' | 'float16';

const fround = Math.fround;
const TWO_PI_F32 = fround(2 * Math.PI);
const TWO_POW_M24 = 2 ** -24;
/** Bigger draws would not fit a typed array on every Node build; no latent comes close. */
const MAX_ELEMENTS = 2 ** 31 - 1;

/** Validates `shape` (positive integers) and returns its element count. */
export function shapeNumel(shape: readonly number[]): number {
  if (!Array.isArray(shape)) {
    throw new PipelineError('input_invalid', 'shape: expected an array of positive integers');
  }
  let n = 1;
  for (let i = 0; i < shape.length; i++) {
    const d = shape[i];
    if (typeof d !== 'number' || !Number.isInteger(d) || d < 1) {
      throw new PipelineError(
        'input_invalid',
        `shape[${i}]: expected a positive integer, found ${String(d)}`,
      );
    }
    n *= d;
    if (n > MAX_ELEMENTS) {
      throw new PipelineError(
        'input_invalid',
        `shape: expected at most ${MAX_ELEMENTS} elements, found [${shape.join(', ')}]`,
      );
    }
  }
  return n;
}

/** One 16-value block of the AVX2 kernel, in place: slots o…o+7 hold u1 inputs, o+8…o+15 u2. */
function normalFill16Float32(d: Float32Array, o: number): void {
  for (let j = 0; j < 8; j++) {
    const u1 = fround(1 - d[o + j]!);
    const u2 = d[o + j + 8]!;
    const radius = fround(Math.sqrt(fround(-2 * logAvx2OnGrid(u1))));
    sincosAvx2OnGrid(fround(TWO_PI_F32 * u2));
    // `fmadd(n, std, mean)` with std 1 and mean 0 is exact except that it turns -0 into +0.
    d[o + j] = fround(radius * sincosOut.cos) + 0;
    d[o + j + 8] = fround(radius * sincosOut.sin) + 0;
  }
}

function fillUniformFloat32(g: TorchGenerator, d: Float32Array, start: number, end: number): void {
  const engine = g.engine;
  for (let i = start; i < end; i++) d[i] = (engine.nextU32() & 0xffffff) * TWO_POW_M24;
}

function blockNormalFloat32(g: TorchGenerator, n: number): Float32Array {
  const d = new Float32Array(n);
  fillUniformFloat32(g, d, 0, n);
  for (let o = 0; o + 16 <= n; o += 16) normalFill16Float32(d, o);
  if (n % 16 !== 0) {
    // PyTorch redraws the last 16 slots (overwriting finished values) and transforms them again.
    fillUniformFloat32(g, d, n - 16, n);
    normalFill16Float32(d, n - 16);
  }
  return d;
}

/**
 * Float16 uniforms have only 11 bits, so every quantity that depends on one uniform takes one of
 * 2048 values: radius (from u1 = 1 − k/2048) and cos/sin of θ (from u2 = k/2048) are tabulated.
 * The C library's logf/cosf/sinf are modelled by the float64 functions rounded to float32. glibc's
 * are not correctly rounded: for these 2048 inputs glibc 2.36 is 1 ulp away on 11 logf values (none
 * of which changes the half radius) and 53 sinf/cosf values, which flips about 1 in 262144 outputs
 * (seed 42 at 1x16x128x128 is unaffected and matches PyTorch bit for bit).
 */
interface HalfTables {
  radius: Float64Array;
  cos: Float64Array;
  sin: Float64Array;
}

let halfTables: HalfTables | undefined;

function getHalfTables(): HalfTables {
  if (halfTables) return halfTables;
  const radius = new Float64Array(2048);
  const cos = new Float64Array(2048);
  const sin = new Float64Array(2048);
  for (let k = 0; k < 2048; k++) {
    const u1 = 1 - k / 2048; // exact in half
    const logf = fround(Math.log(u1));
    // sqrt(-0) stays -0 for u1 = 1, as in C.
    radius[k] = roundToHalf(fround(Math.sqrt(fround(-2 * logf))));
    // θ = half(float(2π(double) · u2)): toHalfBits rounds to float32 first, then to half.
    const theta = roundToHalf(2 * Math.PI * (k / 2048));
    cos[k] = fround(Math.cos(theta));
    sin[k] = fround(Math.sin(theta));
  }
  halfTables = { radius, cos, sin };
  return halfTables;
}

/** Block `o` of the float16 kernel, in place: slots hold the 11-bit uniform integers k on entry. */
function normalFill16Float16(a: Uint16Array, o: number, t: HalfTables): void {
  for (let j = 0; j < 8; j++) {
    const r = t.radius[a[o + j]!]!;
    const k2 = a[o + j + 8]!;
    // half(float(float(radius) · cosf(θ)) · std + mean); the product is exact in float64 and
    // toHalfBits rounds to float32 before half. Adding mean 0 turns -0 into +0.
    a[o + j] = toHalfBits(fround(r * t.cos[k2]!) + 0);
    a[o + j + 8] = toHalfBits(fround(r * t.sin[k2]!) + 0);
  }
}

function fillUniformFloat16(g: TorchGenerator, a: Uint16Array, start: number, end: number): void {
  const engine = g.engine;
  for (let i = start; i < end; i++) a[i] = engine.nextU32() & 0x7ff;
}

function blockNormalFloat16(g: TorchGenerator, n: number): Uint16Array {
  const t = getHalfTables();
  const a = new Uint16Array(n);
  fillUniformFloat16(g, a, 0, n);
  for (let o = 0; o + 16 <= n; o += 16) normalFill16Float16(a, o, t);
  if (n % 16 !== 0) {
    fillUniformFloat16(g, a, n - 16, n);
    normalFill16Float16(a, n - 16, t);
  }
  return a;
}

/** Returns Float32Array for float32, Uint16Array of IEEE half bit patterns for float16. */
export function randn(generator: TorchGenerator, shape: readonly number[], dtype: 'float32'): Float32Array;
export function randn(generator: TorchGenerator, shape: readonly number[], dtype: 'float16'): Uint16Array;
export function randn(
  generator: TorchGenerator,
  shape: readonly number[],
  dtype: NoiseDtype,
): Float32Array | Uint16Array;
export function randn(
  generator: TorchGenerator,
  shape: readonly number[],
  dtype: NoiseDtype,
): Float32Array | Uint16Array {
  const n = shapeNumel(shape);
  if (dtype === 'float32') {
    if (n >= 16) return blockNormalFloat32(generator, n);
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = generator.normalFloat64();
    return out;
  }
  if (dtype === 'float16') {
    if (n >= 16) return blockNormalFloat16(generator, n);
    const out = new Uint16Array(n);
    // double -> float -> half, which is what toHalfBits does.
    for (let i = 0; i < n; i++) out[i] = toHalfBits(generator.normalFloat64());
    return out;
  }
  throw new PipelineError('input_invalid', `dtype: expected 'float32' or 'float16', found ${String(dtype)}`);
}
