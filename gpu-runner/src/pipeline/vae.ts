/**
 * VAE halves of the pipeline: latent un-scaling + decode + diffusers' post-processing, and the
 * image-to-image encode with latent sampling (sd3-pipeline.md §2.7, §2.8).
 */
import type { OnnxModel } from '../runtime/onnx-backend.js';
import { roundFloat32ToHalf, roundToHalf } from '../tensor/float16.js';
import { type FloatDtype, floatTensor, tensorValues } from '../tensor/host-tensor.js';
import type { InputImage } from './generation-params.js';

const f = Math.fround;

function inputType(model: OnnxModel, name: string): FloatDtype {
  return model.inputs.find((i) => i.name === name)!.dtype as FloatDtype;
}

/** The float op of the pipeline dtype: float32 rounding, or half rounding for float16. */
export function dtypeRound(dtype: FloatDtype): (x: number) => number {
  return dtype === 'float16' ? roundToHalf : f;
}

export interface RgbImage {
  width: number;
  height: number;
  /** Interleaved RGB, height * width * 3. */
  rgb: Uint8Array;
}

export async function decodeLatents(
  vaeDecoder: OnnxModel,
  postprocessGraph: OnnxModel,
  latents: Float32Array,
  dims: readonly [number, number, number, number],
  vae: { scalingFactor: number; shiftFactor: number },
  dtype: FloatDtype,
): Promise<RgbImage[]> {
  const scaled = new Float32Array(latents.length);
  const sf = f(vae.scalingFactor);
  const shift = f(vae.shiftFactor);
  if (dtype === 'float16') {
    for (let i = 0; i < latents.length; i++)
      scaled[i] = roundFloat32ToHalf(f(roundFloat32ToHalf(f(latents[i]! / sf)) + shift));
  } else {
    for (let i = 0; i < latents.length; i++) scaled[i] = f(f(latents[i]! / sf) + shift);
  }
  const [batch] = dims;
  const images: RgbImage[] = [];
  // One row at a time keeps the decoder's activation memory at batch 1, as diffusers' tiling-free
  // decode of a single image would; rows are independent.
  const rowLen = latents.length / batch;
  for (let b = 0; b < batch; b++) {
    const row = scaled.subarray(b * rowLen, (b + 1) * rowLen);
    const out = await vaeDecoder.run(
      {
        latent_sample: floatTensor(
          row,
          [1, dims[1], dims[2], dims[3]],
          inputType(vaeDecoder, 'latent_sample'),
        ),
      },
      ['sample'],
    );
    const sample = out['sample']!;
    const [, , height, width] = sample.dims as [number, number, number, number];
    const pixels = await postprocessGraph.run({ sample }, ['image']);
    images.push({ width, height, rgb: pixels['image']!.data as Uint8Array });
  }
  return images;
}

/** VaeImageProcessor.preprocess after the resize: /255, NCHW, 2x - 1, cast to the dtype. */
export function preprocessImage(image: InputImage, dtype: FloatDtype): Float32Array {
  const q = dtypeRound(dtype);
  const plane = image.width * image.height;
  const out = new Float32Array(plane * 3);
  for (let p = 0; p < plane; p++) {
    for (let ch = 0; ch < 3; ch++) {
      out[ch * plane + p] = q(f(f(2 * f(image.rgb[p * 3 + ch]! / 255)) - 1));
    }
  }
  return out;
}

/**
 * Encodes the init image and samples the latent distribution with the given noise
 * (mean + exp(0.5 * clamp(logvar, -30, 20)) * eps), then applies (x - shift) * scale.
 * Returns [1, C, h, w] values in the pipeline dtype.
 */
export async function encodeImage(
  vaeEncoder: OnnxModel,
  image: InputImage,
  drawNoise: (shape: readonly number[]) => Float32Array,
  vae: { latentChannels: number; scalingFactor: number; shiftFactor: number },
  dtype: FloatDtype,
): Promise<{ latents: Float32Array; dims: [number, number, number, number] }> {
  const q = dtypeRound(dtype);
  const pixels = preprocessImage(image, dtype);
  const out = await vaeEncoder.run(
    { sample: floatTensor(pixels, [1, 3, image.height, image.width], inputType(vaeEncoder, 'sample')) },
    ['latent_parameters'],
  );
  const params = out['latent_parameters']!;
  const [, twoC, h, w] = params.dims as [number, number, number, number];
  const c = twoC / 2;
  const values = tensorValues(params);
  const plane = c * h * w;
  const eps = drawNoise([1, c, h, w]);
  const latents = new Float32Array(plane);
  const sf = f(vae.scalingFactor);
  const shift = f(vae.shiftFactor);
  for (let i = 0; i < plane; i++) {
    const mean = values[i]!;
    const logvar = Math.min(Math.max(values[plane + i]!, -30), 20);
    const std = q(Math.exp(q(0.5 * logvar)));
    const sample = q(mean + q(std * eps[i]!));
    latents[i] = q(q(sample - shift) * sf);
  }
  return { latents, dims: [1, c, h, w] };
}
