/**
 * `sd3 models push`: uploads a model folder to S3 in parallel (multipart above a threshold), then
 * writes manifest.json last, so a reader either sees no manifest or a complete folder.
 */
import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  PutObjectCommand,
  type S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { buildManifest, MANIFEST_NAME, type ManifestFile, type ModelManifest, mapLimit } from './manifest.js';
import { objectKey, type S3Location } from './s3-uri.js';

const MiB = 1024 * 1024;

export interface PushOptions {
  s3: S3Client;
  /** Files (or parts of one big file) in flight at once. */
  concurrency?: number;
  /** Files at least this big go up in parts. */
  multipartThreshold?: number;
  /** Part size (S3: at least 5 MiB, at most 10,000 parts). */
  partSize?: number;
  onFile?: (file: ManifestFile) => void;
}

export interface PushResult {
  manifest: ModelManifest;
  manifestKey: string;
}

async function putSmall(
  s3: S3Client,
  bucket: string,
  key: string,
  path: string,
  size: number,
): Promise<void> {
  await s3.send(
    new PutObjectCommand({ Bucket: bucket, Key: key, Body: createReadStream(path), ContentLength: size }),
  );
}

async function putMultipart(
  s3: S3Client,
  bucket: string,
  key: string,
  path: string,
  size: number,
  partSize: number,
  concurrency: number,
): Promise<void> {
  // Grow parts for files that would need more than S3's 10,000.
  const part = Math.max(partSize, Math.ceil(size / 10_000));
  const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }));
  if (!UploadId) throw new Error(`no upload id for s3://${bucket}/${key}`);
  try {
    const numbers = Array.from({ length: Math.ceil(size / part) }, (_, i) => i + 1);
    const parts = await mapLimit(numbers, concurrency, async (PartNumber) => {
      const start = (PartNumber - 1) * part;
      const end = Math.min(size, start + part);
      const out = await s3.send(
        new UploadPartCommand({
          Bucket: bucket,
          Key: key,
          UploadId,
          PartNumber,
          Body: createReadStream(path, { start, end: end - 1 }),
          ContentLength: end - start,
        }),
      );
      return { PartNumber, ETag: out.ETag };
    });
    await s3.send(
      new CompleteMultipartUploadCommand({
        Bucket: bucket,
        Key: key,
        UploadId,
        MultipartUpload: { Parts: parts },
      }),
    );
  } catch (err) {
    await s3
      .send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId }))
      .catch(() => undefined);
    throw err;
  }
}

export async function pushModel(dir: string, dest: S3Location, options: PushOptions): Promise<PushResult> {
  const concurrency = options.concurrency ?? 8;
  const threshold = options.multipartThreshold ?? 64 * MiB;
  const partSize = options.partSize ?? 64 * MiB;
  if (partSize < 5 * MiB) throw new Error('partSize must be at least 5 MiB (the S3 minimum)');
  const manifest = await buildManifest(dir);
  await mapLimit(manifest.files, concurrency, async (file) => {
    const key = objectKey(dest, file.path);
    const path = join(dir, file.path);
    if (file.size >= threshold) {
      await putMultipart(options.s3, dest.bucket, key, path, file.size, partSize, concurrency);
    } else {
      await putSmall(options.s3, dest.bucket, key, path, file.size);
    }
    options.onFile?.(file);
  });
  const manifestKey = objectKey(dest, MANIFEST_NAME);
  await options.s3.send(
    new PutObjectCommand({
      Bucket: dest.bucket,
      Key: manifestKey,
      Body: `${JSON.stringify(manifest, null, 2)}\n`,
      ContentType: 'application/json',
    }),
  );
  return { manifest, manifestKey };
}
