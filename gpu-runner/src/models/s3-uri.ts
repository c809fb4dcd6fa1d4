/** `s3://bucket/prefix` parsing and the S3 client the model commands use. */
import { S3Client } from '@aws-sdk/client-s3';

export interface S3Location {
  bucket: string;
  /** Key prefix without leading or trailing slash ('' for the bucket root). */
  prefix: string;
}

export function parseS3Uri(uri: string): S3Location {
  const m = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:\/(.*))?$/.exec(uri);
  if (!m) throw new Error(`expected s3://bucket/prefix, got ${JSON.stringify(uri)}`);
  const prefix = (m[2] ?? '').replace(/^\/+|\/+$/g, '');
  if (prefix.split('/').some((s) => s === '.' || s === '..')) {
    throw new Error(`the prefix of ${uri} must not contain . or .. segments`);
  }
  return { bucket: m[1]!, prefix };
}

export function objectKey(loc: S3Location, relativePath: string): string {
  return loc.prefix ? `${loc.prefix}/${relativePath}` : relativePath;
}

/** An S3 client; with an endpoint (emulator, S3-compatible store) it uses path-style addressing. */
export function modelsS3Client(
  options: { endpoint?: string | undefined; region?: string | undefined } = {},
): S3Client {
  const region =
    options.region ?? process.env['AWS_REGION'] ?? process.env['AWS_DEFAULT_REGION'] ?? 'us-east-1';
  return new S3Client({
    region,
    ...(options.endpoint ? { endpoint: options.endpoint, forcePathStyle: true } : {}),
  });
}
