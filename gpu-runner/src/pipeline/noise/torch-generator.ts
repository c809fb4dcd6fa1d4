/**
 * A stand-in for a seeded `torch.Generator('cpu')`: the MT19937 engine plus the cached double normal
 * that PyTorch's scalar Box–Muller path keeps between calls.
 */
import { PipelineError } from '../../errors.js';
import { MT19937 } from './mt19937.js';

const TWO_POW_32 = 4294967296;
const MAX_SEED = (1n << 64n) - 1n;
const TWO_POW_M24 = 2 ** -24;
const TWO_POW_M11 = 2 ** -11;
const TWO_POW_M53 = 2 ** -53;

/**
 * Validates a seed (an integer in 0 … 2^64 − 1) and reduces it mod 2^32, as `manual_seed` does before
 * seeding the engine.
 */
export function engineSeed(seed: number | bigint): number {
  if (typeof seed === 'bigint') {
    if (seed < 0n || seed > MAX_SEED) {
      throw new PipelineError('input_invalid', `seed: expected an integer in [0, 2^64 - 1], found ${seed}`);
    }
    return Number(BigInt.asUintN(32, seed));
  }
  if (typeof seed !== 'number' || !Number.isInteger(seed) || seed < 0 || seed >= 2 ** 64) {
    throw new PipelineError(
      'input_invalid',
      `seed: expected an integer in [0, 2^64 - 1], found ${String(seed)}`,
    );
  }
  // fmod is exact, so this is right even for integers above 2^53.
  return seed % TWO_POW_32;
}

export class TorchGenerator {
  /** The engine; exposed so callers and tests can reason about how many words were drawn. */
  readonly engine = new MT19937();
  /**
   * PyTorch's generator also caches a float normal, but only `normal_distribution<float>` uses it and
   * CPU `randn` never does, so only the double cache is modelled.
   */
  private hasCachedNormal = false;
  private cachedNormal = 0;

  constructor(seed: number | bigint) {
    this.manualSeed(seed);
  }

  /** Reseeds the engine from `seed mod 2^32` and clears the cached normal, like `manual_seed`. */
  manualSeed(seed: number | bigint): this {
    this.engine.seed(engineSeed(seed));
    this.hasCachedNormal = false;
    this.cachedNormal = 0;
    return this;
  }

  /** Next 32-bit output (`random()`). */
  random(): number {
    return this.engine.nextU32();
  }

  /** Two outputs joined, the first one as the high word (`random64()`). */
  random64(): bigint {
    const hi = this.engine.nextU32();
    const lo = this.engine.nextU32();
    return (BigInt(hi) << 32n) | BigInt(lo);
  }

  /** Uniform float32 in [0, 1): 24 random bits. */
  uniformFloat32(): number {
    return (this.engine.nextU32() & 0xffffff) * TWO_POW_M24;
  }

  /** Uniform float16 in [0, 1): 11 random bits. */
  uniformFloat16(): number {
    return (this.engine.nextU32() & 0x7ff) * TWO_POW_M11;
  }

  /** Uniform float64 in [0, 1): the low 53 bits of `random64()`. */
  uniformFloat64(): number {
    const hi = this.engine.nextU32();
    const lo = this.engine.nextU32();
    return ((hi & 0x1fffff) * TWO_POW_32 + lo) * TWO_POW_M53;
  }

  /**
   * One standard normal from the scalar double Box–Muller path (`at::normal_distribution<double>`):
   * the first uniform is the angle, the second the radius; the sine half is cached for the next call.
   */
  normalFloat64(): number {
    if (this.hasCachedNormal) {
      this.hasCachedNormal = false;
      // `* std + mean` with mean 0 turns -0 into +0.
      return this.cachedNormal + 0;
    }
    const u1 = this.uniformFloat64();
    const u2 = this.uniformFloat64();
    const r = Math.sqrt(-2 * Math.log(1 - u2));
    const theta = 2 * Math.PI * u1;
    this.cachedNormal = r * Math.sin(theta);
    this.hasCachedNormal = true;
    return r * Math.cos(theta) + 0;
  }
}
