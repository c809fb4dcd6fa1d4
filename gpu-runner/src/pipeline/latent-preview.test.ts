import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import sharp from 'sharp';
import { encodePreview, PREVIEW_MAX_BYTES } from '../image/preview-image.js';
import { float32ToHalfArray } from '../tensor/float16.js';
import { writeTinyModel } from '../tiny-model/index.js';
import {
  isPreviewStep,
  latentPreviewRgb,
  previewInterval,
  previewSize,
  SD3_LATENT_RGB_BIAS,
  SD3_LATENT_RGB_FACTORS,
} from './latent-preview.js';
import { Sd3Pipeline } from './sd3-pipeline.js';

const C = 16;

/** A c x h x w latent whose channel `ch` is `value` everywhere and every other channel 0. */
function oneChannel(h: number, w: number, ch: number, value: number): Float32Array {
  const out = new Float32Array(C * h * w);
  out.fill(value, ch * h * w, (ch + 1) * h * w);
  return out;
}

const byte = (v: number) => Math.min(255, Math.max(0, Math.round(((v + 1) / 2) * 255)));

test('the linear map: an all-zero latent shows the bias, one channel shows its factor row', () => {
  const zero = latentPreviewRgb({ dtype: 'float32', dims: [C, 2, 2], latent: new Float32Array(C * 4) });
  assert.deepEqual([zero.width, zero.height], [2, 2]);
  // bias (0.2394, 0.2135, 0.1925) -> (1.2394/2*255, ...) = (158.02, 154.72, 152.29)
  assert.deepEqual([...zero.rgb.subarray(0, 3)], [158, 155, 152]);
  assert.deepEqual([...zero.rgb.subarray(0, 3)], SD3_LATENT_RGB_BIAS.map(byte));
  // Channel 2 at 2.0: R = 0.2394 + 2 * 0.1994 = 0.6382 -> 208.9; G = 0.2135 + 0.1854 = 0.3989
  // -> 178.4; B = 0.1925 + 0.0916 = 0.2841 -> 163.7.
  const red = latentPreviewRgb({ dtype: 'float32', dims: [C, 1, 1], latent: oneChannel(1, 1, 2, 2) });
  assert.deepEqual([...red.rgb], [209, 178, 164]);
  // Channel 15 at 10 pushes every component below -1: clamped to black.
  const dark = latentPreviewRgb({ dtype: 'float32', dims: [C, 1, 1], latent: oneChannel(1, 1, 15, 10) });
  assert.deepEqual([...dark.rgb], [0, 0, 0]);
  // Every channel at once: the sum of the factor columns.
  const ones = new Float32Array(C).fill(1);
  const all = latentPreviewRgb({ dtype: 'float32', dims: [C, 1, 1], latent: ones });
  const sums = [0, 1, 2].map(
    (k) => SD3_LATENT_RGB_BIAS[k]! + SD3_LATENT_RGB_FACTORS.reduce((a, row) => a + row[k]!, 0),
  );
  assert.deepEqual([...all.rgb], sums.map(byte));
});

test('float16 bit patterns give the same preview as their float32 values', () => {
  const h = 4;
  const w = 6;
  const values = new Float32Array(C * h * w);
  for (let i = 0; i < values.length; i++) values[i] = Math.sin(i * 0.37) * 1.5;
  const halves = float32ToHalfArray(values);
  const a = latentPreviewRgb({ dtype: 'float32', dims: [C, h, w], latent: values });
  const b = latentPreviewRgb({ dtype: 'float16', dims: [C, h, w], latent: halves });
  assert.equal(a.rgb.length, h * w * 3);
  // Half rounding moves a value by at most 2^-11 relative: a byte differs by at most 1.
  for (let i = 0; i < a.rgb.length; i++) assert.ok(Math.abs(a.rgb[i]! - b.rgb[i]!) <= 1, `byte ${i}`);
});

test('the denoised estimate: x0 = x_next - sigma_next * (x_next - x_prev) / (sigma_next - sigma)', () => {
  // x_prev = 0, x_next = 1 on channel 2, sigmas 1.0 -> 0.5: v = (1 - 0) / -0.5 = -2, x0 = 1 + 0.5 * 2 = 2.
  const preview = latentPreviewRgb({
    dtype: 'float32',
    dims: [C, 1, 1],
    latent: oneChannel(1, 1, 2, 1),
    previous: { latent: new Float32Array(C), sigma: 1, sigmaNext: 0.5 },
  });
  assert.deepEqual([...preview.rgb], [209, 178, 164], 'the same as channel 2 at 2.0');
});

test('large latents are sampled down to 128 a side, the aspect kept; bad input is refused', () => {
  assert.deepEqual(previewSize(128, 128), [128, 128]);
  assert.deepEqual(previewSize(80, 192), [53, 128]);
  assert.deepEqual(previewSize(8, 8), [8, 8]);
  const p = latentPreviewRgb({
    dtype: 'float32',
    dims: [C, 80, 192],
    latent: new Float32Array(C * 80 * 192),
  });
  assert.deepEqual([p.width, p.height, p.rgb.length], [128, 53, 128 * 53 * 3]);
  assert.throws(
    () => latentPreviewRgb({ dtype: 'float32', dims: [4, 2, 2], latent: new Float32Array(16) }),
    /16 latent channels, got 4/,
  );
  assert.throws(
    () => latentPreviewRgb({ dtype: 'float32', dims: [C, 2, 2], latent: new Float32Array(10) }),
    /fewer than 16x2x2/,
  );
});

test('at most 8 previews a job, never after the last step', () => {
  const stepsWith = (total: number) =>
    Array.from({ length: total }, (_, i) => i + 1).filter((s) => isPreviewStep(s, total));
  assert.deepEqual(stepsWith(28), [4, 8, 12, 16, 20, 24]);
  assert.deepEqual(stepsWith(4), [1, 2, 3]);
  assert.deepEqual(stepsWith(1), []);
  assert.deepEqual(stepsWith(16), [2, 4, 6, 8, 10, 12, 14]);
  assert.equal(previewInterval(50), 7);
  assert.ok(stepsWith(50).length <= 8);
  assert.equal(isPreviewStep(2, 4, 0), false, 'maxPreviews 0: none');
});

test('a preview encodes to a small JPEG that decodes at its size', async () => {
  const h = 128;
  const w = 128;
  const latent = new Float32Array(C * h * w);
  // Noise is the worst case for JPEG size.
  let s = 1;
  for (let i = 0; i < latent.length; i++) {
    s = (s * 16807) % 2147483647;
    latent[i] = (s / 2147483647 - 0.5) * 6;
  }
  const frame = latentPreviewRgb({ dtype: 'float32', dims: [C, h, w], latent });
  const rec = await encodePreview({ ...frame, step: 3, totalSteps: 28 });
  assert.equal(rec.mime, 'image/jpeg');
  const file = Buffer.from(rec.data, 'base64');
  assert.ok(file.length <= PREVIEW_MAX_BYTES, `${file.length} bytes`);
  const meta = await sharp(file).metadata();
  assert.deepEqual([meta.format, meta.width, meta.height], ['jpeg', 128, 128]);
  await assert.rejects(encodePreview({ ...frame, width: 7, step: 1, totalSteps: 2 }), /is not 7x128 RGB/);
});

test('the pipeline hands fp16 and fp32 latents to the preview hook without changing the result', async () => {
  const root = await mkdtemp(join(tmpdir(), 'sd3-preview-'));
  try {
    for (const dtype of ['fp32', 'fp16'] as const) {
      const { dir } = await writeTinyModel(join(root, dtype), { dtype });
      const pipe = await Sd3Pipeline.load(dir, { provider: 'cpu' });
      try {
        const params = { prompt: 'a kite', width: 64, height: 64, steps: 8, guidanceScale: 5, seed: 3 };
        const plain = await pipe.generate(params);
        const seen: { step: number; cls: string; rgb: number }[] = [];
        const withPreviews = await pipe.generate(params, {
          previews: {
            maxPreviews: 4,
            onLatent: (s) => {
              assert.deepEqual(s.dims, [1, 16, 8, 8]);
              const frame = latentPreviewRgb({
                dtype: s.dtype,
                dims: [16, 8, 8],
                latent: s.latent,
                previous: { latent: s.previous, sigma: s.sigma, sigmaNext: s.sigmaNext },
              });
              seen.push({ step: s.step, cls: s.latent.constructor.name, rgb: frame.rgb.length });
            },
          },
        });
        assert.deepEqual(
          seen.map((x) => x.step),
          [2, 4, 6],
          'every 2nd step of 8, none after the last',
        );
        const expected = dtype === 'fp16' ? 'Uint16Array' : 'Float32Array';
        assert.ok(
          seen.every((x) => x.cls === expected && x.rgb === 8 * 8 * 3),
          JSON.stringify(seen),
        );
        assert.deepEqual(withPreviews.latents, plain.latents, `${dtype}: previews leave the result alone`);
      } finally {
        await pipe.release();
      }
    }
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
