/**
 * Cost of one live preview at SD3 Medium's 1024x1024 (latents 16x128x128): the linear
 * latent-to-RGB map with the denoised estimate (worker thread, between steps) and the JPEG encode
 * (main thread, sharp), in fp16 and fp32, and what that adds per denoising step for a 28-step job.
 */
import { encodePreview, isPreviewStep, latentPreviewRgb } from '@sd3/gpu-runner';

export interface PreviewCost {
  dtype: 'fp16' | 'fp32';
  /** The linear map on the worker thread, per preview (median). */
  mapMs: number;
  /** The JPEG encode on the main thread, per preview (median). */
  encodeMs: number;
  bytes: number;
  previewsPerJob: number;
  /** Worker-thread time added per step, averaged over the job (what delays denoising). */
  mapMsPerStep: number;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function randomHalfBits(n: number, seed: number): Uint16Array {
  // Values around ±2 as an SD3 latent has: sign, exponent 13..16, random mantissa.
  const out = new Uint16Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (s * 16807) % 2147483647;
    out[i] = ((s & 1) << 15) | ((13 + ((s >> 1) % 4)) << 10) | ((s >> 3) & 0x3ff);
  }
  return out;
}

function randomFloats(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (s * 16807) % 2147483647;
    out[i] = (s / 2147483647 - 0.5) * 4;
  }
  return out;
}

export async function measurePreviewCost(
  dtype: 'fp16' | 'fp32',
  steps = 28,
  repeats = 30,
): Promise<PreviewCost> {
  const dims = [16, 128, 128] as const;
  const n = dims[0] * dims[1] * dims[2];
  const latent = dtype === 'fp16' ? randomHalfBits(n, 7) : randomFloats(n, 7);
  const previous = dtype === 'fp16' ? randomHalfBits(n, 11) : randomFloats(n, 11);
  const input = {
    dtype: dtype === 'fp16' ? ('float16' as const) : ('float32' as const),
    dims,
    latent,
    previous: { latent: previous, sigma: 0.6, sigmaNext: 0.55 },
  };
  for (let i = 0; i < 5; i++) await encodePreview({ ...latentPreviewRgb(input), step: 1, totalSteps: steps });
  const map: number[] = [];
  const enc: number[] = [];
  let bytes = 0;
  for (let r = 0; r < repeats; r++) {
    const t0 = performance.now();
    const frame = latentPreviewRgb(input);
    const t1 = performance.now();
    const rec = await encodePreview({ ...frame, step: 1, totalSteps: steps });
    enc.push(performance.now() - t1);
    map.push(t1 - t0);
    bytes = Buffer.from(rec.data, 'base64').length;
  }
  const previewsPerJob = Array.from({ length: steps }, (_, i) => i + 1).filter((s) =>
    isPreviewStep(s, steps),
  ).length;
  const mapMs = median(map);
  return {
    dtype,
    mapMs,
    encodeMs: median(enc),
    bytes,
    previewsPerJob,
    mapMsPerStep: (mapMs * previewsPerJob) / steps,
  };
}
