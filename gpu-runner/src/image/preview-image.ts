/**
 * Live preview files: the small RGB frame of latent-preview.ts as a JPEG stored on the job item
 * (shared JobPreviewRecord), so it must stay a few KB. Quality steps down when a busy frame would
 * go over the limit.
 */
import type { JobPreviewRecord } from '@sd3/shared';
import sharp from 'sharp';

/** Encoded bytes per preview at most (about 11 KB as base64 in the DynamoDB item). */
export const PREVIEW_MAX_BYTES = 8 * 1024;
const QUALITIES = [70, 50, 30] as const;

export interface PreviewFrameInput {
  rgb: Uint8Array;
  width: number;
  height: number;
  step: number;
  totalSteps: number;
}

export async function encodePreview(frame: PreviewFrameInput): Promise<JobPreviewRecord> {
  const { rgb, width, height } = frame;
  if (rgb.length !== width * height * 3) {
    throw new RangeError(`preview: ${rgb.length} bytes is not ${width}x${height} RGB`);
  }
  const raw = sharp(rgb, { raw: { width, height, channels: 3 } });
  let file: Buffer | undefined;
  for (const quality of QUALITIES) {
    file = await raw.clone().jpeg({ quality, chromaSubsampling: '4:2:0' }).toBuffer();
    if (file.length <= PREVIEW_MAX_BYTES) break;
  }
  if (!file || file.length > PREVIEW_MAX_BYTES) {
    throw new RangeError(`preview: ${width}x${height} does not fit in ${PREVIEW_MAX_BYTES} bytes`);
  }
  return {
    step: frame.step,
    totalSteps: frame.totalSteps,
    mime: 'image/jpeg',
    data: file.toString('base64'),
    width,
    height,
  };
}
