/**
 * The img2img `image` field: base64 or a data: URL, decoded, sniffed and decoded once by sharp
 * (PNG, JPEG or WebP only; at most 4096 px a side; a pixel limit against decompression bombs), so
 * the runner only ever sees a checked image in S3.
 */
import { LIMITS } from '@sd3/shared';
import sharp, { type Metadata } from 'sharp';
import { ApiError } from '../errors/api-error.js';

export const MAX_INPUT_SIDE = 4096;

const FORMATS = {
  png: { ext: 'png', contentType: 'image/png' },
  jpeg: { ext: 'jpg', contentType: 'image/jpeg' },
  webp: { ext: 'webp', contentType: 'image/webp' },
} as const;

export interface InputImage {
  bytes: Uint8Array;
  format: keyof typeof FORMATS;
  ext: string;
  contentType: string;
  width: number;
  height: number;
}

const bad = (message: string) => ApiError.field('image', message);

/** The base64 text of a data: URL or of a bare base64 string (standard or url-safe alphabet). */
function base64Text(value: string): string {
  let text = value;
  if (value.startsWith('data:')) {
    const comma = value.indexOf(',');
    const header = comma < 0 ? '' : value.slice(5, comma);
    if (comma < 0 || !/;base64$/i.test(header)) {
      throw bad('a data: URL must be base64-encoded (data:image/png;base64,...)');
    }
    text = value.slice(comma + 1);
  }
  text = text.replace(/\s+/g, '');
  if (text.length === 0) throw bad('is empty');
  if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(text) || text.length % 4 === 1) {
    throw bad('is neither base64 nor a base64 data: URL');
  }
  return text;
}

export async function decodeInputImage(value: string): Promise<InputImage> {
  const text = base64Text(value);
  // Refuse by length before allocating the decoded buffer.
  if (Math.floor((text.length * 3) / 4) > LIMITS.maxInputImageBytes + 3) {
    throw new ApiError(
      'payload_too_large',
      `image: decoded image is larger than ${LIMITS.maxInputImageBytes} bytes`,
      {
        errors: [{ field: 'image', message: `must be at most ${LIMITS.maxInputImageBytes} bytes decoded` }],
      },
    );
  }
  const bytes = Buffer.from(text.replaceAll('-', '+').replaceAll('_', '/'), 'base64');
  if (bytes.length > LIMITS.maxInputImageBytes) {
    throw new ApiError(
      'payload_too_large',
      `image: decoded image is larger than ${LIMITS.maxInputImageBytes} bytes`,
      {
        errors: [{ field: 'image', message: `must be at most ${LIMITS.maxInputImageBytes} bytes decoded` }],
      },
    );
  }
  const options = { limitInputPixels: MAX_INPUT_SIDE * MAX_INPUT_SIDE, failOn: 'error' as const };
  let meta: Metadata;
  try {
    meta = await sharp(bytes, options).metadata();
  } catch (err) {
    // sharp refuses a header that claims more pixels than the limit before decoding anything.
    if (err instanceof Error && /pixel limit/i.test(err.message)) {
      throw bad(`has more pixels than ${MAX_INPUT_SIDE}x${MAX_INPUT_SIDE}`);
    }
    throw bad('is not a readable image (PNG, JPEG or WebP)');
  }
  const format = meta.format;
  if (format !== 'png' && format !== 'jpeg' && format !== 'webp') {
    throw bad(`${format ?? 'unknown'} images are not accepted; use PNG, JPEG or WebP`);
  }
  const width = meta.width ?? 0;
  const height = meta.height ?? 0;
  if (width < 1 || height < 1 || width > MAX_INPUT_SIDE || height > MAX_INPUT_SIDE) {
    throw bad(`is ${width}x${height}; each side must be 1 to ${MAX_INPUT_SIDE} pixels`);
  }
  if ((meta.pages ?? 1) > 1) throw bad('animated images are not accepted');
  try {
    // A full decode (shrunk on load where the codec can) catches truncated or corrupt data.
    await sharp(bytes, options).resize(8, 8, { fit: 'fill' }).raw().toBuffer();
  } catch (err) {
    throw bad(`could not be decoded: ${err instanceof Error ? err.message : String(err)}`);
  }
  return { bytes, format, ...FORMATS[format], width, height };
}
