/**
 * The runner's model sync: downloads a pushed model folder into a local cache, in parallel and
 * resumably, and verifies every file against the manifest.
 *
 * - A file whose size and SHA-256 already match is kept (a warm cache costs one hash per file).
 * - A download goes to `<file>.partial` and is renamed when its hash matches; an interrupted one
 *   resumes from the partial's length with a ranged GET.
 * - Any mismatch refuses the folder: PipelineError('model_invalid') naming the file, expected and
 *   found; the bad partial is deleted so the next attempt starts that file over.
 * - After a full verification a stamp records the manifest hash and each file's size and mtime; the
 *   next sync with the same manifest and untouched files skips the hashing (cold start).
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { type Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { PipelineError } from '../errors.js';
import {
  hashFile,
  MANIFEST_NAME,
  type ManifestFile,
  type ModelManifest,
  mapLimit,
  PARTIAL_SUFFIX,
  parseManifest,
  SYNC_STAMP_NAME,
} from './manifest.js';
import { objectKey, type S3Location } from './s3-uri.js';

export interface SyncOptions {
  s3: S3Client;
  concurrency?: number;
  onFile?: (file: ManifestFile, action: 'kept' | 'downloaded') => void;
}

export interface SyncResult {
  manifest: ModelManifest;
  downloaded: string[];
  kept: string[];
  /** True when the stamp matched and nothing was hashed. */
  fromStamp: boolean;
}

interface Stamp {
  manifestSha256: string;
  files: Record<string, { size: number; mtimeMs: number }>;
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

function uriOf(src: S3Location, path: string): string {
  return `s3://${src.bucket}/${objectKey(src, path)}`;
}

async function readStamp(dir: string): Promise<Stamp | null> {
  try {
    return JSON.parse(await readFile(join(dir, SYNC_STAMP_NAME), 'utf8')) as Stamp;
  } catch {
    return null;
  }
}

async function stampStillValid(
  dir: string,
  stamp: Stamp | null,
  manifest: ModelManifest,
  manifestSha: string,
) {
  if (!stamp || stamp.manifestSha256 !== manifestSha) return false;
  for (const f of manifest.files) {
    const s = await stat(join(dir, f.path)).catch(() => null);
    const recorded = stamp.files[f.path];
    if (!s || !recorded || s.size !== f.size || s.size !== recorded.size || s.mtimeMs !== recorded.mtimeMs)
      return false;
  }
  return true;
}

async function fetchManifest(
  s3: S3Client,
  src: S3Location,
): Promise<{ manifest: ModelManifest; text: string }> {
  const uri = uriOf(src, MANIFEST_NAME);
  let text: string;
  try {
    const out = await s3.send(
      new GetObjectCommand({ Bucket: src.bucket, Key: objectKey(src, MANIFEST_NAME) }),
    );
    text = await out.Body!.transformToString();
  } catch (err) {
    const name = (err as { name?: string }).name;
    if (name === 'NoSuchKey' || name === 'NotFound' || name === 'AccessDenied') {
      throw new PipelineError(
        'model_invalid',
        `no model manifest at ${uri} (push the folder with sd3 models push)`,
        {
          cause: err,
        },
      );
    }
    throw err;
  }
  return { manifest: parseManifest(text, uri), text };
}

function mismatch(file: ManifestFile, where: string, found: { size: number; sha256: string }): PipelineError {
  const what =
    found.size !== file.size
      ? `expected ${file.size} bytes, found ${found.size}`
      : `expected sha256 ${file.sha256}, found ${found.sha256}`;
  return new PipelineError(
    'model_invalid',
    `model file ${file.path} does not match the manifest (${where}): ${what}`,
  );
}

async function download(s3: S3Client, src: S3Location, dir: string, file: ManifestFile): Promise<void> {
  const target = join(dir, file.path);
  const partial = `${target}${PARTIAL_SUFFIX}`;
  await mkdir(dirname(target), { recursive: true });
  const hash = createHash('sha256');
  let have = (await stat(partial).catch(() => null))?.size ?? 0;
  if (have > file.size) {
    await rm(partial, { force: true });
    have = 0;
  }
  if (have > 0) {
    for await (const chunk of createReadStream(partial, { highWaterMark: 1 << 20 }))
      hash.update(chunk as Buffer);
  }
  let size = have;
  if (have < file.size || file.size === 0) {
    const out = await s3.send(
      new GetObjectCommand({
        Bucket: src.bucket,
        Key: objectKey(src, file.path),
        ...(have > 0 ? { Range: `bytes=${have}-` } : {}),
      }),
    );
    const tap = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        hash.update(chunk);
        size += chunk.length;
        done(null, chunk);
      },
    });
    await pipeline(out.Body as Readable, tap, createWriteStream(partial, { flags: have > 0 ? 'a' : 'w' }));
  }
  const found = { size, sha256: hash.digest('hex') };
  if (found.size !== file.size || found.sha256 !== file.sha256) {
    await rm(partial, { force: true });
    throw mismatch(file, `downloaded from ${uriOf(src, file.path)}`, found);
  }
  await rename(partial, target);
}

/** Checks a local folder against a manifest; throws model_invalid naming the first bad file. */
export async function verifyModelDir(dir: string, manifest: ModelManifest, concurrency = 4): Promise<void> {
  await mapLimit(manifest.files, concurrency, async (file) => {
    const path = join(dir, file.path);
    const s = await stat(path).catch(() => null);
    if (!s?.isFile())
      throw new PipelineError('model_invalid', `model file ${file.path} is missing from ${dir}`);
    const found = s.size === file.size ? await hashFile(path) : { size: s.size, sha256: '' };
    if (found.size !== file.size || found.sha256 !== file.sha256) throw mismatch(file, path, found);
  });
}

/**
 * The verified manifest goes into the folder too, so the runner can hash the files against it at
 * start (SD3_RUNNER_VERIFY_MODEL) and `sd3 models verify DIR` works on a pulled folder.
 */
async function writeLocalManifest(dir: string, text: string): Promise<void> {
  const path = join(dir, MANIFEST_NAME);
  if ((await readFile(path, 'utf8').catch(() => null)) !== text) await writeFile(path, text);
}

export async function syncModel(src: S3Location, dir: string, options: SyncOptions): Promise<SyncResult> {
  const concurrency = options.concurrency ?? 8;
  const { manifest, text } = await fetchManifest(options.s3, src);
  const manifestSha = sha256(text);
  await mkdir(dir, { recursive: true });
  if (await stampStillValid(dir, await readStamp(dir), manifest, manifestSha)) {
    await writeLocalManifest(dir, text);
    return { manifest, downloaded: [], kept: manifest.files.map((f) => f.path), fromStamp: true };
  }
  // Any earlier stamp is void from here on: a crash mid-sync must not leave a stale one behind.
  await rm(join(dir, SYNC_STAMP_NAME), { force: true });
  const downloaded: string[] = [];
  const kept: string[] = [];
  await mapLimit(manifest.files, concurrency, async (file) => {
    const path = join(dir, file.path);
    const s = await stat(path).catch(() => null);
    if (s?.isFile() && s.size === file.size) {
      const local = await hashFile(path);
      if (local.sha256 === file.sha256) {
        kept.push(file.path);
        options.onFile?.(file, 'kept');
        return;
      }
    }
    await download(options.s3, src, dir, file);
    downloaded.push(file.path);
    options.onFile?.(file, 'downloaded');
  });
  await writeLocalManifest(dir, text);
  const stamp: Stamp = { manifestSha256: manifestSha, files: {} };
  for (const f of manifest.files) {
    const s = await stat(join(dir, f.path));
    stamp.files[f.path] = { size: s.size, mtimeMs: s.mtimeMs };
  }
  await writeFile(join(dir, SYNC_STAMP_NAME), JSON.stringify(stamp));
  return { manifest, downloaded: downloaded.sort(), kept: kept.sort(), fromStamp: false };
}
