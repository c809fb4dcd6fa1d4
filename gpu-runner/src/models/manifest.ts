/**
 * The manifest of a model folder: every file's relative path, size and SHA-256. `sd3 models push`
 * writes it next to the files (last, so a half-pushed folder has none); the runner's sync checks
 * each file against it and refuses a folder that does not match.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join, posix, relative, sep } from 'node:path';
import { z } from 'zod';
import { PipelineError } from '../errors.js';

export const MANIFEST_NAME = 'manifest.json';
/** Written by sync into the local folder after a full verification (not part of the model). */
export const SYNC_STAMP_NAME = '.sd3-sync.json';
/** Suffix of a file being downloaded. */
export const PARTIAL_SUFFIX = '.partial';

const ManifestFileSchema = z.strictObject({
  path: z
    .string()
    .min(1)
    .refine((p) => isSafeRelativePath(p), 'must be a relative path inside the model folder'),
  size: z.number().int().nonnegative(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
});

export const ModelManifestSchema = z.strictObject({
  version: z.literal(1),
  createdAt: z.string(),
  totalBytes: z.number().int().nonnegative(),
  files: z.array(ManifestFileSchema).min(1),
});
export type ModelManifest = z.infer<typeof ModelManifestSchema>;
export type ManifestFile = z.infer<typeof ManifestFileSchema>;

/** Forward slashes, no leading slash, no `.`/`..` segments, no backslashes: never escapes the folder. */
export function isSafeRelativePath(p: string): boolean {
  if (p.startsWith('/') || p.includes('\\') || p.includes('\0')) return false;
  return p.split('/').every((seg) => seg !== '' && seg !== '.' && seg !== '..');
}

export async function hashFile(path: string): Promise<{ size: number; sha256: string }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { size, sha256: hash.digest('hex') };
}

/** Runs `fn` over `items` with at most `limit` in flight; the first failure rejects. */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (!failed && next < items.length) {
      const i = next++;
      try {
        out[i] = await fn(items[i]!);
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return out;
}

async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string) => {
    for (const entry of await readdir(d, { withFileTypes: true })) {
      const full = join(d, entry.name);
      if (entry.isDirectory()) await walk(full);
      else if (entry.isFile()) out.push(relative(dir, full).split(sep).join(posix.sep));
      else throw new PipelineError('model_invalid', `${full}: only plain files and folders can be pushed`);
    }
  };
  await walk(dir);
  return out;
}

/** Hashes every file of a model folder (except a manifest, sync stamp or partial download). */
export async function buildManifest(dir: string, concurrency = 4): Promise<ModelManifest> {
  const info = await stat(dir).catch(() => null);
  if (!info?.isDirectory()) throw new PipelineError('model_invalid', `${dir} is not a folder`);
  const paths = (await listFiles(dir))
    .filter(
      (p) => p !== MANIFEST_NAME && posix.basename(p) !== SYNC_STAMP_NAME && !p.endsWith(PARTIAL_SUFFIX),
    )
    .sort();
  if (paths.length === 0) throw new PipelineError('model_invalid', `${dir} has no files`);
  const files = await mapLimit(paths, concurrency, async (path) => ({
    path,
    ...(await hashFile(join(dir, path))),
  }));
  return {
    version: 1,
    createdAt: new Date().toISOString(),
    totalBytes: files.reduce((a, f) => a + f.size, 0),
    files,
  };
}

/** Parses a manifest; `source` names where it came from in the error. */
export function parseManifest(text: string, source: string): ModelManifest {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new PipelineError('model_invalid', `${source} is not JSON`);
  }
  const parsed = ModelManifestSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new PipelineError(
      'model_invalid',
      `${source}: ${issue.path.join('.') || 'manifest'} ${issue.message}`,
    );
  }
  const seen = new Set<string>();
  for (const f of parsed.data.files) {
    if (seen.has(f.path)) throw new PipelineError('model_invalid', `${source}: ${f.path} is listed twice`);
    seen.add(f.path);
  }
  return parsed.data;
}
