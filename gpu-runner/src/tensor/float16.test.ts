import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  float32ToHalfArray,
  fromHalfBits,
  halfArrayToFloat32,
  roundFloat32ToHalf,
  roundToHalf,
  toHalfBits,
} from './float16.js';

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
const fromBits = (bits: number) => {
  u32[0] = bits;
  return f32[0]!;
};

test('known half bit patterns', () => {
  assert.equal(toHalfBits(1), 0x3c00);
  assert.equal(toHalfBits(-2), 0xc000);
  assert.equal(toHalfBits(65504), 0x7bff);
  assert.equal(toHalfBits(65520), 0x7c00); // rounds to Inf
  assert.equal(toHalfBits(2 ** -24), 0x0001);
  assert.equal(toHalfBits(2 ** -25), 0x0000); // tie to even -> 0
  assert.equal(toHalfBits(-0), 0x8000);
  assert.equal(toHalfBits(1 + 2 ** -11), 0x3c00); // tie to even
  assert.equal(toHalfBits(1 + 3 * 2 ** -11), 0x3c02); // tie to even, upwards
  assert.ok(Number.isNaN(fromHalfBits(toHalfBits(Number.NaN))));
  for (let h = 0; h < 0x7c00; h++) assert.equal(toHalfBits(fromHalfBits(h)), h);
});

test('the bulk converter and the fast rounding equal the scalar reference', () => {
  // Every float32 bit pattern at a stride that visits every exponent and many mantissas, plus
  // every exact tie between two halves.
  const values: number[] = [];
  for (let b = 0; b < 0x7f800000; b += 4099) values.push(fromBits(b), -fromBits(b));
  for (let e = 0; e < 0x8f; e++)
    for (let m = 0; m < 1024; m++) values.push(fromBits((e << 23) | (m << 13) | 0x1000));
  values.push(0, -0, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 65519.99, 65520, -65520);
  const src = Float32Array.from(values);
  const bulk = float32ToHalfArray(src);
  for (let i = 0; i < src.length; i++) {
    const want = toHalfBits(src[i]!);
    assert.equal(bulk[i], want, `bulk ${src[i]}`);
    const r = roundFloat32ToHalf(src[i]!);
    assert.ok(Object.is(r, roundToHalf(src[i]!)), `round ${src[i]}: ${r} vs ${roundToHalf(src[i]!)}`);
  }
  assert.deepEqual(
    halfArrayToFloat32(bulk),
    Float32Array.from(bulk, (h) => fromHalfBits(h)),
  );
});
