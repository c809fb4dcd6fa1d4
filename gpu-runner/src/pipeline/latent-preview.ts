/**
 * Live previews without a model: SD3's 16 latent channels map to RGB through one linear map
 * (16x3 factors plus a bias), the approximation latent previewers use. The values are facts from
 * ComfyUI (comfy/latent_formats.py, class SD3: latent_rgb_factors and latent_rgb_factors_bias).
 * ComfyUI applies them to the sampler's latent, which is in the transformer's (scaled and shifted)
 * space: the same space as this pipeline's denoising latents, before the VAE's un-scaling. The map
 * output in [-1, 1] becomes [0, 255] as (v + 1) / 2 * 255, clamped.
 *
 * The preview shows the denoised estimate, not the noisy latent: for flow matching
 * x_t = (1 - sigma) x0 + sigma * noise, so after an Euler step x0 ≈ x_next - sigma_next * v with
 * v = (x_next - x_prev) / (sigma_next - sigma_prev). Both latents are still in the loop's buffers,
 * so nothing is copied.
 */
import { fromHalfBits } from '../tensor/float16.js';
import type { FloatDtype } from '../tensor/host-tensor.js';

/** Rows: latent channels 0..15; columns: R, G, B. */
export const SD3_LATENT_RGB_FACTORS: readonly (readonly [number, number, number])[] = [
  [-0.0922, -0.0175, 0.0749],
  [0.0311, 0.0633, 0.0954],
  [0.1994, 0.0927, 0.0458],
  [0.0856, 0.0339, 0.0902],
  [0.0587, 0.0272, -0.0496],
  [-0.0006, 0.1104, 0.0309],
  [0.0978, 0.0306, 0.0427],
  [-0.0042, 0.1038, 0.1358],
  [-0.0194, 0.002, 0.0669],
  [-0.0488, 0.013, -0.0268],
  [0.0922, 0.0988, 0.0951],
  [-0.0278, 0.0524, -0.0542],
  [0.0332, 0.0456, 0.0895],
  [-0.0069, -0.003, -0.081],
  [-0.0596, -0.0465, -0.0293],
  [-0.1448, -0.1463, -0.1189],
];
export const SD3_LATENT_RGB_BIAS: readonly [number, number, number] = [0.2394, 0.2135, 0.1925];
export const SD3_LATENT_CHANNELS = SD3_LATENT_RGB_FACTORS.length;

/** Previews at most this many pixels a side (the latent resolution at 1024², smaller above). */
export const PREVIEW_MAX_SIDE = 128;
/** A job gets at most this many previews. */
export const MAX_PREVIEWS = 8;

/** Every how many steps a preview is made: at most `maxPreviews` over `totalSteps`. */
export function previewInterval(totalSteps: number, maxPreviews = MAX_PREVIEWS): number {
  return Math.max(1, Math.ceil(totalSteps / Math.max(1, maxPreviews)));
}

/** Whether step `step` (1-based, after it ran) gets a preview; never the last (the image replaces it). */
export function isPreviewStep(step: number, totalSteps: number, maxPreviews = MAX_PREVIEWS): boolean {
  return maxPreviews > 0 && step < totalSteps && step % previewInterval(totalSteps, maxPreviews) === 0;
}

/** Latent data as the loop holds it: float32 values, or float16 bit patterns. */
export type LatentData = Float32Array | Uint16Array;

export interface LatentPreviewInput {
  dtype: FloatDtype;
  /** [channels, height, width] of one image; the data holds the first image of the batch first. */
  dims: readonly [number, number, number];
  latent: LatentData;
  /**
   * The latent before the last step and both sigmas: the preview shows the denoised estimate.
   * Absent: the latent itself is mapped.
   */
  previous?: { latent: LatentData; sigma: number; sigmaNext: number };
}

export interface PreviewRgb {
  /** Interleaved RGB bytes, width * height * 3. */
  rgb: Uint8Array;
  width: number;
  height: number;
}

let halfTable: Float32Array | undefined;
/** Every float16 bit pattern's value: 256 KB once, then a lookup per element. */
function halfValues(): Float32Array {
  if (!halfTable) {
    halfTable = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) halfTable[h] = fromHalfBits(h);
  }
  return halfTable;
}

/** One channel's values at the sampled pixels, as the denoised estimate when `k` is not 0. */
function channelValues(
  input: LatentPreviewInput,
  previous: LatentData | undefined,
  k: number,
  base: number,
  src: Int32Array,
  out: Float32Array,
): void {
  const cur = input.latent;
  if (input.dtype === 'float16') {
    const half = halfValues();
    for (let p = 0; p < src.length; p++) out[p] = half[cur[base + src[p]!]!]!;
    if (k !== 0 && previous) {
      for (let p = 0; p < src.length; p++)
        out[p] = out[p]! + k * (out[p]! - half[previous[base + src[p]!]!]!);
    }
  } else {
    for (let p = 0; p < src.length; p++) out[p] = cur[base + src[p]!]!;
    if (k !== 0 && previous) {
      for (let p = 0; p < src.length; p++) out[p] = out[p]! + k * (out[p]! - previous[base + src[p]!]!);
    }
  }
}

/** The size of the preview of an h x w latent: at most `maxSide` a side, the aspect kept. */
export function previewSize(height: number, width: number, maxSide = PREVIEW_MAX_SIDE): [number, number] {
  const scale = Math.min(1, maxSide / Math.max(height, width));
  return [Math.max(1, Math.round(height * scale)), Math.max(1, Math.round(width * scale))];
}

/**
 * The RGB preview of the first image of a latent batch. Downscales by nearest sampling so a large
 * latent costs no more than a 128x128 one.
 */
export function latentPreviewRgb(input: LatentPreviewInput, maxSide = PREVIEW_MAX_SIDE): PreviewRgb {
  const [c, h, w] = input.dims;
  if (c !== SD3_LATENT_CHANNELS) {
    throw new RangeError(`latent previews need ${SD3_LATENT_CHANNELS} latent channels, got ${c}`);
  }
  const plane = h * w;
  if (input.latent.length < c * plane || (input.previous && input.previous.latent.length < c * plane)) {
    throw new RangeError(`latent data holds fewer than ${c}x${h}x${w} values`);
  }
  const [oh, ow] = previewSize(h, w, maxSide);
  const pixels = oh * ow;
  // Source index of each preview pixel (nearest sampling; the identity at latent resolution).
  const src = new Int32Array(pixels);
  for (let y = 0, o = 0; y < oh; y++) {
    const sy = Math.min(h - 1, Math.floor(((y + 0.5) * h) / oh));
    for (let x = 0; x < ow; x++, o++) src[o] = sy * w + Math.min(w - 1, Math.floor(((x + 0.5) * w) / ow));
  }
  // x0 = x_next - sigmaNext * (x_next - x_prev) / (sigmaNext - sigma) = x_next + k (x_next - x_prev).
  const prev = input.previous;
  const dSigma = prev ? prev.sigmaNext - prev.sigma : 0;
  const k = prev && dSigma !== 0 ? -prev.sigmaNext / dSigma : 0;
  const [br, bg, bb] = SD3_LATENT_RGB_BIAS;
  const r = new Float32Array(pixels).fill(br);
  const g = new Float32Array(pixels).fill(bg);
  const b = new Float32Array(pixels).fill(bb);
  // Channel by channel: each pass reads one latent plane in order.
  const v = new Float32Array(pixels);
  for (let ch = 0; ch < c; ch++) {
    channelValues(input, prev?.latent, k, ch * plane, src, v);
    const [fr, fg, fb] = SD3_LATENT_RGB_FACTORS[ch]!;
    for (let p = 0; p < pixels; p++) {
      const x = v[p]!;
      r[p] = r[p]! + fr * x;
      g[p] = g[p]! + fg * x;
      b[p] = b[p]! + fb * x;
    }
  }
  // (v + 1) / 2 * 255, rounded and clamped.
  const rgb = new Uint8Array(pixels * 3);
  const toByte = (x: number) => {
    const q = Math.round((x + 1) * 127.5);
    return Math.min(255, Math.max(0, q));
  };
  for (let p = 0, o = 0; p < pixels; p++) {
    rgb[o++] = toByte(r[p]!);
    rgb[o++] = toByte(g[p]!);
    rgb[o++] = toByte(b[p]!);
  }
  return { rgb, width: ow, height: oh };
}
