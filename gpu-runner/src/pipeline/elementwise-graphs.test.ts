/**
 * The elementwise graphs against straightforward scalar models of diffusers' tensor ops: each
 * half op is the float32 result rounded to half; numpy's round is half to even.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { loadGraphBytes, type OnnxModel } from '../runtime/onnx-backend.js';
import { float32ToHalfArray, fromHalfBits, roundToHalf, toHalfBits } from '../tensor/float16.js';
import { guidedEulerStepGraph, postprocessGraph } from './elementwise-graphs.js';
import { eulerStep } from './scheduler/flow-match-euler.js';

const f = Math.fround;
const h = roundToHalf;

function seededValues(n: number, seed: number, scale: number): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = ((s / 2 ** 32) * 2 - 1) * scale;
  }
  return out;
}

let guided32: OnnxModel;
let guided16: OnnxModel;
let plain16: OnnxModel;
let post16: OnnxModel;
let post32: OnnxModel;
before(async () => {
  guided32 = await loadGraphBytes('guided32', guidedEulerStepGraph('float32', true));
  guided16 = await loadGraphBytes('guided', guidedEulerStepGraph('float16', true));
  plain16 = await loadGraphBytes('plain', guidedEulerStepGraph('float16', false));
  post16 = await loadGraphBytes('post16', postprocessGraph('float16'));
  post32 = await loadGraphBytes('post32', postprocessGraph('float32'));
});
after(async () => {
  await Promise.all([guided32, guided16, plain16, post16, post32].map((m) => m.release()));
});

test('float32 CFG + Euler step equals torch float32 ops exactly (no fused multiply-add)', async () => {
  const batch = 1;
  const n = batch * 16 * 8 * 8;
  const out = seededValues(2 * n, 11, 3);
  const sample = seededValues(n, 12, 2);
  const guidance = 7;
  const [sigma, sigmaNext] = [0.9873806238174438, 0.9741077423095703];
  const dt = f(sigmaNext - sigma);
  const next = new Float32Array(2 * n);
  await guided32.run(
    {
      model_output: { dtype: 'float32', dims: [2 * batch, 16, 8, 8], data: out },
      sample: { dtype: 'float32', dims: [batch, 16, 8, 8], data: sample },
      guidance: { dtype: 'float32', dims: [], data: new Float32Array([guidance]) },
      dt: { dtype: 'float32', dims: [], data: new Float32Array([dt]) },
    },
    { next_input: { dtype: 'float32', dims: [2 * batch, 16, 8, 8], data: next } },
  );
  // Reference: CFG in float32, then the scheduler's scalar Euler step.
  const guided = Float32Array.from({ length: n }, (_, j) =>
    f(out[j]! + f(guidance * f(out[j + n]! - out[j]!))),
  );
  const expected = sample.slice();
  eulerStep(expected, guided, sigma, sigmaNext);
  for (let j = 0; j < n; j++) {
    assert.equal(next[j], expected[j], `element ${j}`);
    assert.equal(next[j + n], expected[j]);
  }
});

test('float16 CFG + Euler step follows diffusers op by op', async () => {
  const batch = 2;
  const n = batch * 16 * 4 * 4;
  const out = float32ToHalfArray(seededValues(2 * n, 1, 3));
  const sample = float32ToHalfArray(seededValues(n, 2, 2));
  const guidance = 4.5;
  const dt = f(0.8773819208145142 - 0.895900309085846);
  const next = new Uint16Array(2 * n);
  await guided16.run(
    {
      model_output: { dtype: 'float16', dims: [2 * batch, 16, 4, 4], data: out },
      sample: { dtype: 'float16', dims: [batch, 16, 4, 4], data: sample },
      guidance: { dtype: 'float32', dims: [], data: new Float32Array([guidance]) },
      dt: { dtype: 'float32', dims: [], data: new Float32Array([dt]) },
    },
    { next_input: { dtype: 'float16', dims: [2 * batch, 16, 4, 4], data: next } },
  );
  for (let j = 0; j < n; j++) {
    const u = fromHalfBits(out[j]!);
    const c = fromHalfBits(out[j + n]!);
    const noisePred = h(f(u + h(f(f(guidance) * h(f(c - u))))));
    const expected = toHalfBits(f(fromHalfBits(sample[j]!) + h(f(dt * noisePred))));
    assert.equal(next[j], expected, `element ${j}`);
    assert.equal(next[j + n], expected);
  }
});

test('float16 step without CFG uses the output as the velocity', async () => {
  const n = 16 * 8 * 8;
  const out = float32ToHalfArray(seededValues(n, 3, 2));
  const sample = float32ToHalfArray(seededValues(n, 4, 2));
  const dt = f(-0.0126);
  const next = new Uint16Array(n);
  await plain16.run(
    {
      model_output: { dtype: 'float16', dims: [1, 16, 8, 8], data: out },
      sample: { dtype: 'float16', dims: [1, 16, 8, 8], data: sample },
      guidance: { dtype: 'float32', dims: [], data: new Float32Array([1]) },
      dt: { dtype: 'float32', dims: [], data: new Float32Array([dt]) },
    },
    { next_input: { dtype: 'float16', dims: [1, 16, 8, 8], data: next } },
  );
  for (let j = 0; j < n; j++) {
    const expected = toHalfBits(f(fromHalfBits(sample[j]!) + h(f(dt * fromHalfBits(out[j]!)))));
    assert.equal(next[j], expected);
  }
});

/** numpy's round: half to even. */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

test('post-processing: x/2 + 0.5, clamp, round half to even of x * 255, NHWC', async () => {
  const width = 8;
  const height = 4;
  const plane = width * height;
  // Include exact ties: x such that (x/2 + 0.5) * 255 = k + 0.5.
  const values = seededValues(3 * plane, 5, 1.2);
  values[0] = f((2 * 0.5) / 255 - 1); // -> 0.5 exactly -> rounds to 0
  values[1] = f((2 * 1.5) / 255 - 1);
  values[2] = Number.NaN;
  for (const [dtype, graph] of [
    ['float32', post32],
    ['float16', post16],
  ] as const) {
    const input = dtype === 'float16' ? float32ToHalfArray(values) : values;
    const result = await graph.run({ sample: { dtype, dims: [1, 3, height, width], data: input } }, [
      'image',
    ]);
    const image = result['image']!;
    assert.deepEqual(image.dims, [1, height, width, 3]);
    const rgb = image.data as Uint8Array;
    for (let ch = 0; ch < 3; ch++) {
      for (let p = 0; p < plane; p++) {
        const i = ch * plane + p;
        if (Number.isNaN(values[i]!)) continue;
        const x = dtype === 'float16' ? fromHalfBits((input as Uint16Array)[i]!) : values[i]!;
        const q = dtype === 'float16' ? h : f;
        const y = Math.min(Math.max(q(q(x * 0.5) + 0.5), 0), 1);
        assert.equal(rgb[p * 3 + ch], roundHalfEven(f(y * 255)), `${dtype} ch ${ch} p ${p} x ${x}`);
      }
    }
  }
});
