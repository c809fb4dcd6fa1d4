import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { isPipelineError } from '../../errors.js';
import { fromHalfBits, toHalfBits } from '../../tensor/float16.js';
import { logAvx2OnGrid, sincosAvx2OnGrid, sincosOut } from './avx2-math.js';
import {
  exactSum,
  fma32,
  logAvx2,
  MT19937,
  type NoiseDtype,
  noiseSummary,
  randn,
  sincosAvx2,
  TorchGenerator,
} from './index.js';

interface RandnReference {
  first16_bits_hex: string[];
  last4: number[];
  sha256_le_bytes: string;
  n: number;
  sum_exact_fsum: number;
}

const reference = JSON.parse(
  readFileSync(new URL('../../../../test/reference/randn.json', import.meta.url), 'utf8'),
) as { x86_avx2: Record<string, RandnReference> };

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
function float32Bits(x: number): number {
  f32[0] = x;
  return u32[0]!;
}

function isInputInvalid(err: unknown): boolean {
  return isPipelineError(err) && err.code === 'input_invalid';
}

/** Published values are printed to 4 decimals. */
function assertClose(got: Float32Array, expected: number[], label: string): void {
  for (let i = 0; i < expected.length; i++) {
    assert.ok(Math.abs(got[i]! - expected[i]!) < 5e-5, `${label} [${i}]: ${got[i]} vs ${expected[i]}`);
  }
}

/** A generator whose engine has already produced `draws` words. */
function advanced(seed: number, draws: number): TorchGenerator {
  const g = new TorchGenerator(seed);
  g.engine.discard(draws);
  return g;
}

describe('MT19937', () => {
  it('gives the standard outputs for the default seed 5489', () => {
    const mt = new MT19937(5489);
    const first = Array.from({ length: 5 }, () => mt.nextU32());
    assert.deepEqual(first, [3499211612, 581869302, 3890346734, 3586334585, 545404204]);
    // std::mt19937's required check: the 10000th output of a default-constructed engine.
    const mt2 = new MT19937();
    mt2.discard(9999);
    assert.equal(mt2.nextU32(), 4123659995);
  });

  it('gives the standard first output for seed 0 and reseeds cleanly', () => {
    const mt = new MT19937(0);
    assert.equal(mt.nextU32(), 2357136044);
    mt.discard(1000);
    mt.seed(5489);
    assert.equal(mt.nextU32(), 3499211612);
  });
});

describe('TorchGenerator', () => {
  it('reduces seeds mod 2^32 like manual_seed, for numbers and bigints', () => {
    const a = new TorchGenerator(42).random();
    assert.equal(new TorchGenerator(42n).random(), a);
    assert.equal(new TorchGenerator(2 ** 32 + 42).random(), a);
    assert.equal(new TorchGenerator((5n << 32n) + 42n).random(), a);
    assert.equal(new TorchGenerator((1n << 64n) - 1n).random(), new TorchGenerator(2 ** 32 - 1).random());
    assert.notEqual(new TorchGenerator(43).random(), a);
  });

  it('rejects negative, non-integer and out-of-range seeds', () => {
    for (const seed of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 64, -1n, 1n << 64n]) {
      assert.throws(() => new TorchGenerator(seed), isInputInvalid, String(seed));
    }
    assert.throws(() => new TorchGenerator(1).manualSeed(-3), isInputInvalid);
  });

  it('builds random64 with the first word high and the uniforms from the stated bits', () => {
    const words = new TorchGenerator(7);
    const w = Array.from({ length: 5 }, () => words.random());
    const g = new TorchGenerator(7);
    assert.equal(g.random64(), (BigInt(w[0]!) << 32n) | BigInt(w[1]!));
    assert.equal(g.uniformFloat32(), (w[2]! & 0xffffff) / 2 ** 24);
    assert.equal(g.uniformFloat16(), (w[3]! & 0x7ff) / 2 ** 11);
    const h = new TorchGenerator(7);
    const expected = Number(((BigInt(w[0]!) << 32n) | BigInt(w[1]!)) & ((1n << 53n) - 1n)) / 2 ** 53;
    assert.equal(h.uniformFloat64(), expected);
  });
});

describe('fma32', () => {
  const ulp = 2 ** -23;
  it('rounds once where fround(a * b + c) rounds twice', () => {
    const a = 1 + ulp;
    const b = 2 ** -24 * (1 - ulp);
    // Exact value 1 + 3·2^-24 − 2^-70: just below the midpoint between 1 + 2^-23 and 1 + 2^-22.
    assert.equal(Math.fround(a * b + (1 + ulp)), 1 + 2 * ulp);
    assert.equal(fma32(a, b, 1 + ulp), 1 + ulp);
    // Exact value 1 + 5·2^-24 + 2^-70: just above the midpoint between 1 + 2^-22 and 1 + 3·2^-23.
    assert.equal(Math.fround(-a * b + (1 + 3 * ulp)), 1 + 2 * ulp);
    assert.equal(fma32(-a, b, 1 + 3 * ulp), 1 + 3 * ulp);
  });

  it('rounds exact ties to even and passes exact results through', () => {
    assert.equal(fma32(1, 2 ** -24, 1), 1);
    assert.equal(fma32(1, 3 * 2 ** -24, 1), 1 + 2 * ulp);
    assert.equal(fma32(3, 5, -7), 8);
  });
});

describe('AVX2 math on the kernel grid', () => {
  const TWO_PI = Math.fround(2 * Math.PI);
  // Every input the kernel can produce when NOISE_EXHAUSTIVE=1 (about 10 s), else a sample that
  // covers every binade of u1 and both ends of θ.
  const exhaustive = process.env['NOISE_EXHAUSTIVE'] === '1';
  const ks: number[] = [];
  for (let k = 0; k < 2 ** 24; k++) {
    if (exhaustive || k % 61 === 0 || k < 4096 || k >= 2 ** 24 - 4096) ks.push(k);
  }

  it(`the unfused copies equal the fused routines (${exhaustive ? 'all' : 'sampled'} inputs)`, () => {
    let checked = 0;
    for (const k of ks) {
      const u = k * 2 ** -24;
      const u1 = Math.fround(1 - u);
      const l = logAvx2(u1);
      if (!Object.is(l, logAvx2OnGrid(u1))) assert.fail(`log mismatch at k=${k}`);
      const theta = Math.fround(TWO_PI * u);
      sincosAvx2(theta);
      const s = sincosOut.sin;
      const c = sincosOut.cos;
      sincosAvx2OnGrid(theta);
      if (!Object.is(s, sincosOut.sin) || !Object.is(c, sincosOut.cos))
        assert.fail(`sincos mismatch at k=${k}`);
      checked++;
    }
    assert.ok(checked >= 270_000);
  });

  it('is close to the true functions', () => {
    for (const x of [1, 0.75, 0.5, 0.1, 2 ** -24]) {
      assert.ok(Math.abs(logAvx2(x) - Math.log(x)) <= 2e-7 * Math.max(1, Math.abs(Math.log(x))), String(x));
    }
    assert.equal(logAvx2(1), 0);
    for (const t of [0, 0.5, 1, 2, 3, 4, 5, 6, 6.2831854820251465]) {
      sincosAvx2(t);
      assert.ok(Math.abs(sincosOut.sin - Math.sin(t)) < 3e-7, `sin ${t}`);
      assert.ok(Math.abs(sincosOut.cos - Math.cos(t)) < 3e-7, `cos ${t}`);
    }
  });
});

describe('randn against the PyTorch reference tensors (seed 42)', () => {
  for (const [key, ref] of Object.entries(reference.x86_avx2)) {
    const [dtype, seedPart, shapePart] = key.split('/') as [NoiseDtype, string, string];
    const seed = Number(seedPart.replace('seed', ''));
    const shape = shapePart.split('x').map(Number);

    it(key, () => {
      const data = randn(new TorchGenerator(seed), shape, dtype);
      assert.equal(data.length, ref.n);
      const summary = noiseSummary(shape, dtype, data);
      assert.equal(summary.sha256, ref.sha256_le_bytes);
      assert.equal(summary.sum, ref.sum_exact_fsum);
      const bits =
        data instanceof Float32Array
          ? Array.from(data.subarray(0, 16), (x) => float32Bits(x).toString(16).padStart(8, '0'))
          : Array.from(data.subarray(0, 16), (h) => h.toString(16).padStart(4, '0'));
      assert.deepEqual(bits, ref.first16_bits_hex);
      const tail = data.subarray(data.length - 4);
      const last4 = tail instanceof Float32Array ? [...tail] : Array.from(tail, fromHalfBits);
      assert.deepEqual(last4, ref.last4);
      assert.equal(summary.head.length, 16);
    });
  }
});

describe('randn small sizes (scalar double path with the cached normal)', () => {
  it('matches the widely published values', () => {
    const got = randn(new TorchGenerator(42), [2, 3], 'float32');
    assertClose(got, [0.3367, 0.1288, 0.2345, 0.2303, -1.1229, -0.1863], 'seed 42');
    const got0 = randn(new TorchGenerator(0), [5], 'float32');
    assertClose(got0, [1.541, -0.2934, -2.1788, 0.5684, -1.0845], 'seed 0');
  });

  it('continues the stream across calls, returning the cached value first', () => {
    const six = randn(new TorchGenerator(42), [6], 'float32');
    const g = new TorchGenerator(42);
    const a = randn(g, [3], 'float32');
    const b = randn(g, [3], 'float32');
    assert.deepEqual([...a, ...b], [...six]);

    // n = 7 uses 4 pairs (16 words) and leaves the 8th value cached.
    const eight = randn(new TorchGenerator(42), [8], 'float32');
    const h = new TorchGenerator(42);
    assert.deepEqual([...randn(h, [7], 'float32')], [...eight.subarray(0, 7)]);
    assert.equal(randn(h, [1], 'float32')[0], eight[7]);
  });

  it('leaves the cache alone in the block path', () => {
    const six = randn(new TorchGenerator(42), [6], 'float32');
    const g = new TorchGenerator(42);
    randn(g, [3], 'float32'); // 8 words, caches six[3]
    const block = randn(g, [16], 'float32');
    assert.deepEqual([...block], [...randn(advanced(42, 8), [16], 'float32')]);
    assert.equal(randn(g, [1], 'float32')[0], six[3]);
  });

  it('casts double -> float -> half for float16', () => {
    const single = randn(new TorchGenerator(42), [7], 'float32');
    const half = randn(new TorchGenerator(42), [7], 'float16');
    assert.deepEqual(
      [...half],
      Array.from(single, (x) => toHalfBits(x)),
    );
  });

  it('manualSeed restarts the stream and clears the cache', () => {
    const fresh = randn(new TorchGenerator(42), [3], 'float32');
    const g = new TorchGenerator(42);
    randn(g, [3], 'float32'); // leaves a cached value behind
    randn(g, [20], 'float32');
    assert.equal(g.manualSeed(42), g);
    assert.deepEqual([...randn(g, [3], 'float32')], [...fresh]);
    g.manualSeed(42);
    assert.deepEqual([...randn(g, [16], 'float16')], [...randn(new TorchGenerator(42), [16], 'float16')]);
  });
});

describe('randn block path', () => {
  it('matches the published seed 0 4x4 draw and differs between seeds', () => {
    const published = [
      -1.1258, -1.1524, -0.2506, -0.4339, 0.8487, 0.692, -0.316, -2.1152, 0.3223, -1.2633, 0.35, 0.3081,
      0.1198, 1.2377, 1.1168, -0.2473,
    ];
    const got = randn(new TorchGenerator(0), [4, 4], 'float32');
    assertClose(got, published, 'seed 0 4x4');
    for (const dtype of ['float32', 'float16'] as const) {
      const a = randn(new TorchGenerator(1), [1, 4, 8, 8], dtype);
      const b = randn(new TorchGenerator(2), [1, 4, 8, 8], dtype);
      let same = 0;
      for (let i = 0; i < a.length; i++) if (a[i] === b[i]) same++;
      assert.ok(same < a.length / 50, `${dtype}: ${same} equal values`);
    }
  });

  for (const dtype of ['float32', 'float16'] as const) {
    it(`${dtype}: n % 16 != 0 redraws the last 16 slots and consumes n + 16 words`, () => {
      for (const n of [17, 33, 250]) {
        const full = Math.floor(n / 16) * 16;
        const g = new TorchGenerator(5);
        const out = randn(g, [n], dtype);
        // Values before the tail come from the complete blocks of a draw of the full-block length.
        const blocks = randn(new TorchGenerator(5), [full], dtype);
        assert.deepEqual([...out.subarray(0, n - 16)], [...blocks.subarray(0, n - 16)], `n=${n} head`);
        // The tail is one block transformed from words n … n+15.
        assert.deepEqual([...out.subarray(n - 16)], [...randn(advanced(5, n), [16], dtype)], `n=${n} tail`);
        // And the next draw starts after word n + 16.
        assert.deepEqual(
          [...randn(g, [32], dtype)],
          [...randn(advanced(5, n + 16), [32], dtype)],
          `n=${n} next`,
        );
      }
    });
  }

  it('consumes exactly n words when n is a multiple of 16', () => {
    const g = new TorchGenerator(9);
    randn(g, [2, 16], 'float16');
    assert.deepEqual([...randn(g, [16], 'float16')], [...randn(advanced(9, 32), [16], 'float16')]);
  });

  it('produces roughly standard normal data', () => {
    for (const dtype of ['float32', 'float16'] as const) {
      const data = randn(new TorchGenerator(123), [1, 16, 32, 32], dtype);
      const values = data instanceof Float32Array ? [...data] : Array.from(data, fromHalfBits);
      const mean = values.reduce((a, x) => a + x, 0) / values.length;
      const variance = values.reduce((a, x) => a + (x - mean) ** 2, 0) / values.length;
      assert.ok(Math.abs(mean) < 0.05, `${dtype} mean ${mean}`);
      assert.ok(Math.abs(variance - 1) < 0.05, `${dtype} variance ${variance}`);
    }
  });
});

describe('input validation', () => {
  it('rejects bad shapes and dtypes', () => {
    const g = new TorchGenerator(0);
    for (const shape of [[0], [2, -1], [1.5], [Number.NaN], [2 ** 16, 2 ** 16]]) {
      assert.throws(() => randn(g, shape, 'float32'), isInputInvalid, JSON.stringify(shape));
    }
    assert.throws(() => randn(g, [4], 'bfloat16' as NoiseDtype), isInputInvalid);
    assert.equal(randn(g, [], 'float32').length, 1);
  });
});

describe('noiseSummary', () => {
  it('summarises float16 data as values and hashes the raw bytes', () => {
    const data = new Uint16Array([0x3c00, 0xc000, 0x3800]);
    const s = noiseSummary([3], 'float16', data);
    const bytes = Buffer.from([0x00, 0x3c, 0x00, 0xc0, 0x00, 0x38]);
    assert.deepEqual(s, {
      shape: [3],
      dtype: 'float16',
      head: [1, -2, 0.5],
      sum: -0.5,
      sha256: createHash('sha256').update(bytes).digest('hex'),
    });
  });

  it('hashes float32 data as little-endian bytes', () => {
    const s = noiseSummary([2], 'float32', new Float32Array([1, -2]));
    const bytes = Buffer.from([0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0xc0]);
    assert.equal(s.sha256, createHash('sha256').update(bytes).digest('hex'));
    assert.deepEqual(s.head, [1, -2]);
  });

  it('rejects data that does not fit the shape and dtype', () => {
    assert.throws(() => noiseSummary([4], 'float32', new Float32Array(3)), isInputInvalid);
    assert.throws(() => noiseSummary([2], 'float32', new Uint16Array(2)), isInputInvalid);
  });

  it('sums exactly', () => {
    const sum = (xs: number[]) => exactSum(xs.length, (i) => xs[i]!);
    assert.equal(sum([]), 0);
    assert.equal(sum([1e16, 1, -1e16]), 1);
    assert.equal(sum(Array(10).fill(0.1)), 1);
    // Needs the final half-way correction: the naive sum is 1.
    assert.equal(sum([1, 1e-16, 1e-16]), 1.0000000000000002);
    assert.equal(sum([2 ** 53, 1, 1e-3]), 2 ** 53 + 2);
  });
});
