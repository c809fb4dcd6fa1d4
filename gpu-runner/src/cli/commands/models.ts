/**
 * `sd3 models push DIR s3://bucket/prefix` and `sd3 models pull s3://bucket/prefix DIR`: model
 * folders with a SHA-256 manifest in S3 (or an S3-compatible endpoint), and `sd3 models verify DIR`
 * against a folder's manifest.json.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ENV } from '@sd3/shared';
import {
  MANIFEST_NAME,
  modelsS3Client,
  parseManifest,
  parseS3Uri,
  pushModel,
  type S3Location,
  syncModel,
  verifyModelDir,
} from '../../models/index.js';
import { type Command, parseNumber, printJson, UsageError } from '../cli-io.js';

const USAGE = `sd3 models push DIR s3://BUCKET/PREFIX [--endpoint URL] [--concurrency N]
sd3 models pull s3://BUCKET/PREFIX DIR [--endpoint URL] [--concurrency N]
sd3 models verify DIR

push    hashes every file of DIR, uploads them in parallel (multipart above 64 MiB) and writes
        PREFIX/manifest.json (paths, sizes, SHA-256) last.
pull    downloads into DIR: files that already match are kept, interrupted downloads resume, every
        file is checked against the manifest; a mismatch fails naming the file (exit 2). The
        manifest is written into DIR too (the runner checks the folder against it at start).
verify  checks DIR against its own manifest.json.

--endpoint defaults to $${ENV.AWS_ENDPOINT_S3} (an emulator or S3-compatible store); credentials
and region come from the usual AWS environment.`;

function parse(args: string[]) {
  try {
    return parseArgs({
      args,
      options: {
        endpoint: { type: 'string' },
        concurrency: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: true,
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

function location(uri: string | undefined): S3Location {
  if (!uri) throw new UsageError(`missing s3://BUCKET/PREFIX\n\n${USAGE}`);
  try {
    return parseS3Uri(uri);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

export const modelsCommand: Command = {
  name: 'models',
  summary: 'push a model folder to S3 with a SHA-256 manifest, pull (sync + verify) or verify one',
  usage: USAGE,
  async run(args, io) {
    const { values, positionals } = parse(args);
    const [sub, a, b, ...extra] = positionals;
    if (extra.length > 0) throw new UsageError(`unexpected arguments: ${extra.join(' ')}`);
    const concurrency = parseNumber(values.concurrency, 'concurrency', { integer: true }) ?? 8;
    if (concurrency < 1) throw new UsageError('--concurrency must be at least 1');
    const endpoint = values.endpoint ?? process.env[ENV.AWS_ENDPOINT_S3];
    if (sub === 'push') {
      if (!a) throw new UsageError(`missing DIR\n\n${USAGE}`);
      const dest = location(b);
      const s3 = modelsS3Client({ endpoint });
      try {
        const started = Date.now();
        const result = await pushModel(a, dest, {
          s3,
          concurrency,
          onFile: (f) => io.stderr.write(`uploaded ${f.path}\n`),
        });
        printJson(io, {
          manifest: `s3://${dest.bucket}/${result.manifestKey}`,
          files: result.manifest.files.length,
          bytes: result.manifest.totalBytes,
          seconds: (Date.now() - started) / 1000,
        });
      } finally {
        s3.destroy();
      }
      return;
    }
    if (sub === 'pull') {
      const src = location(a);
      if (!b) throw new UsageError(`missing DIR\n\n${USAGE}`);
      const s3 = modelsS3Client({ endpoint });
      try {
        const started = Date.now();
        const result = await syncModel(src, b, {
          s3,
          concurrency,
          onFile: (f, action) => io.stderr.write(`${action} ${f.path}\n`),
        });
        printJson(io, {
          dir: b,
          files: result.manifest.files.length,
          bytes: result.manifest.totalBytes,
          downloaded: result.downloaded.length,
          kept: result.kept.length,
          from_stamp: result.fromStamp,
          seconds: (Date.now() - started) / 1000,
        });
      } finally {
        s3.destroy();
      }
      return;
    }
    if (sub === 'verify') {
      if (!a || b) throw new UsageError(`usage: sd3 models verify DIR`);
      const path = join(a, MANIFEST_NAME);
      const text = await readFile(path, 'utf8').catch(() => {
        throw new UsageError(`${path} not found`);
      });
      const manifest = parseManifest(text, path);
      await verifyModelDir(a, manifest, concurrency);
      printJson(io, { dir: a, files: manifest.files.length, bytes: manifest.totalBytes, verified: true });
      return;
    }
    throw new UsageError(`expected push, pull or verify\n\n${USAGE}`);
  },
};
