/**
 * Parameters of one pipeline call and their validation against the loaded model. Defaults follow
 * diffusers' StableDiffusion3Pipeline (28 steps, guidance 7.0, size = sample_size * vae scale).
 */
import { PipelineError } from '../errors.js';
import type { Sd3ModelConfig } from '../model/model-config.js';

export interface InputImage {
  /** RGB bytes, height * width * 3, already resized to the generation size. */
  readonly rgb: Uint8Array;
  readonly width: number;
  readonly height: number;
}

export interface GenerationParams {
  prompt: string;
  negativePrompt?: string;
  width?: number;
  height?: number;
  steps?: number;
  guidanceScale?: number;
  /** 0 … 2^64 − 1, as torch.Generator.manual_seed accepts. */
  seed: number | bigint;
  numImages?: number;
  /** Layers skipped from the end of the CLIP encoders (diffusers' clip_skip). */
  clipSkip?: number;
  maxSequenceLength?: number;
  /** Image-to-image: the init image (resized to width x height) and how much of it to redo. */
  image?: InputImage;
  strength?: number;
}

export interface ResolvedParams {
  prompt: string;
  negativePrompt: string;
  width: number;
  height: number;
  steps: number;
  guidanceScale: number;
  seed: bigint;
  numImages: number;
  clipSkip: number | null;
  maxSequenceLength: number;
  image: InputImage | null;
  strength: number;
}

export const MAX_IMAGES_PER_CALL = 8;
export const MAX_STEPS = 500;

function bad(field: string, message: string): never {
  throw new PipelineError('input_invalid', `${field}: ${message}`);
}

function intIn(field: string, value: number, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    bad(field, `must be an integer from ${min} to ${max}, got ${String(value)}`);
  }
  return value;
}

export function resolveParams(params: GenerationParams, config: Sd3ModelConfig): ResolvedParams {
  const unit = config.vae.scaleFactor * config.transformer.patchSize;
  const defaultSize = config.transformer.sampleSize * config.vae.scaleFactor;
  const maxSize = (config.transformer.maxLatentSize ?? 1024) * config.vae.scaleFactor;
  if (typeof params.prompt !== 'string') bad('prompt', 'must be a string');
  if (params.negativePrompt !== undefined && typeof params.negativePrompt !== 'string') {
    bad('negative_prompt', 'must be a string');
  }
  const size = (field: 'width' | 'height', value: number | undefined) => {
    const v = value ?? defaultSize;
    if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0)
      bad(field, `must be a positive integer, got ${v}`);
    if (v % unit !== 0) bad(field, `must be a multiple of ${unit}, got ${v}`);
    if (v > maxSize) bad(field, `must be at most ${maxSize} for this model, got ${v}`);
    return v;
  };
  const width = size('width', params.width);
  const height = size('height', params.height);
  const steps = intIn('steps', params.steps ?? 28, 1, MAX_STEPS);
  const guidanceScale = params.guidanceScale ?? 7;
  if (
    typeof guidanceScale !== 'number' ||
    !Number.isFinite(guidanceScale) ||
    guidanceScale < 0 ||
    guidanceScale > 50
  ) {
    bad('guidance_scale', `must be a number from 0 to 50, got ${guidanceScale}`);
  }
  const seed = toSeed(params.seed);
  const numImages = intIn('n', params.numImages ?? 1, 1, MAX_IMAGES_PER_CALL);
  const clipSkip =
    params.clipSkip === undefined
      ? null
      : intIn('clip_skip', params.clipSkip, 0, Math.min(config.clipL.numLayers, config.clipG.numLayers) - 1);
  const maxSequenceLength = intIn('max_sequence_length', params.maxSequenceLength ?? 256, 1, 512);
  const strength = params.strength ?? (params.image ? 0.6 : 1);
  if (typeof strength !== 'number' || !(strength >= 0 && strength <= 1)) {
    bad('strength', `must be within [0, 1], got ${strength}`);
  }
  if (params.strength !== undefined && !params.image) bad('strength', 'needs an input image');
  if (params.image) {
    const img = params.image;
    if (img.width !== width || img.height !== height || img.rgb.length !== width * height * 3) {
      bad('image', `must be resized to ${width}x${height} RGB before the pipeline call`);
    }
  }
  return {
    prompt: params.prompt,
    negativePrompt: params.negativePrompt ?? '',
    width,
    height,
    steps,
    guidanceScale,
    seed,
    numImages,
    clipSkip,
    maxSequenceLength,
    image: params.image ?? null,
    strength,
  };
}

export function toSeed(seed: number | bigint | string): bigint {
  let v: bigint;
  try {
    if (typeof seed === 'number' && !Number.isSafeInteger(seed)) throw new Error();
    if (typeof seed === 'string' && !/^\d+$/.test(seed)) throw new Error();
    v = BigInt(seed);
  } catch {
    bad('seed', `must be an integer from 0 to 2^64-1, got ${String(seed)}`);
  }
  if (v < 0n || v > 0xffff_ffff_ffff_ffffn) bad('seed', `must be an integer from 0 to 2^64-1, got ${v}`);
  return v;
}
