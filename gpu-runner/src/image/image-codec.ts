/**
 * Image files in and out of the pipeline, via sharp: output images encoded as PNG, JPEG or WebP
 * with the generation parameters embedded (EXIF ImageDescription as JSON, readable in all three
 * formats), and img2img input images decoded, checked and resized as diffusers does.
 */
import sharp from 'sharp';
import { PipelineError } from '../errors.js';
import type { InputImage } from '../pipeline/generation-params.js';
import type { RgbImage } from '../pipeline/vae.js';

export type ImageFormat = 'png' | 'jpeg' | 'webp';
export const IMAGE_FORMATS: readonly ImageFormat[] = ['png', 'jpeg', 'webp'];
export const MIME_TYPES: Record<ImageFormat, string> = {
  png: 'image/png',
  jpeg: 'image/jpeg',
  webp: 'image/webp',
};

/** Largest input image accepted before resizing (decompression bombs are refused by sharp). */
export const MAX_INPUT_PIXELS = 4096 * 4096;

export interface EncodeOptions {
  /** 1-100 for JPEG and WebP; PNG is lossless and ignores it. */
  quality?: number;
  /** Generation parameters stored in the file. */
  metadata?: Record<string, unknown>;
}

export async function encodeOutputImage(
  image: RgbImage,
  format: ImageFormat,
  options: EncodeOptions = {},
): Promise<Buffer> {
  if (!IMAGE_FORMATS.includes(format)) {
    throw new PipelineError(
      'input_invalid',
      `format: must be one of ${IMAGE_FORMATS.join(', ')}, got ${String(format)}`,
    );
  }
  const quality = options.quality ?? 90;
  if (!Number.isInteger(quality) || quality < 1 || quality > 100) {
    throw new PipelineError('input_invalid', `quality: must be an integer from 1 to 100, got ${quality}`);
  }
  let pipeline = sharp(image.rgb, { raw: { width: image.width, height: image.height, channels: 3 } });
  if (options.metadata) {
    pipeline = pipeline.withExif({
      IFD0: { ImageDescription: asciiJson(options.metadata), Software: 'sd3-serverless' },
    });
  }
  switch (format) {
    case 'png':
      return pipeline.png().toBuffer();
    case 'jpeg':
      return pipeline.jpeg({ quality }).toBuffer();
    case 'webp':
      return pipeline.webp({ quality }).toBuffer();
  }
}

/** EXIF strings are ASCII: escape everything else so any prompt survives the round trip. */
function asciiJson(value: unknown): string {
  return JSON.stringify(value).replace(
    /[\u007f-\uffff]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

/** Reads back the parameters embedded by encodeOutputImage (null when absent). */
export async function readImageMetadata(file: Buffer): Promise<Record<string, unknown> | null> {
  const { exif } = await sharp(file).metadata();
  if (!exif) return null;
  const text = exif.toString('latin1');
  const start = text.indexOf('{"');
  if (start < 0) return null;
  const end = text.indexOf('\0', start);
  try {
    return JSON.parse(text.slice(start, end < 0 ? undefined : end)) as Record<string, unknown>;
  } catch {
    return null;
  }
}

/**
 * Decodes an init image (PNG, JPEG or WebP), drops alpha as PIL's convert("RGB") does and resizes
 * it to exactly width x height with a Lanczos kernel, like VaeImageProcessor.
 */
export async function decodeInputImage(file: Uint8Array, width: number, height: number): Promise<InputImage> {
  let meta: Awaited<ReturnType<ReturnType<typeof sharp>['metadata']>>;
  try {
    meta = await sharp(file, { limitInputPixels: MAX_INPUT_PIXELS }).metadata();
  } catch (err) {
    throw new PipelineError('input_invalid', `image: not a readable image (${(err as Error).message})`);
  }
  if (!meta.format || !['png', 'jpeg', 'webp'].includes(meta.format)) {
    throw new PipelineError(
      'input_invalid',
      `image: must be PNG, JPEG or WebP, got ${meta.format ?? 'unknown'}`,
    );
  }
  if (!meta.width || !meta.height || meta.width * meta.height > MAX_INPUT_PIXELS) {
    throw new PipelineError(
      'input_invalid',
      `image: at most ${MAX_INPUT_PIXELS} pixels, got ${meta.width}x${meta.height}`,
    );
  }
  try {
    const { data, info } = await sharp(file, { limitInputPixels: MAX_INPUT_PIXELS })
      .removeAlpha()
      .toColourspace('srgb')
      .resize(width, height, { fit: 'fill', kernel: 'lanczos3' })
      .raw()
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new Error(`decoded ${info.channels} channels`);
    return { rgb: new Uint8Array(data.buffer, data.byteOffset, data.length), width, height };
  } catch (err) {
    throw new PipelineError('input_invalid', `image: cannot be decoded (${(err as Error).message})`);
  }
}
