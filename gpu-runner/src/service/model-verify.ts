/**
 * The runner's start-up check of its model folder: every file hashed (SHA-256) against the folder's
 * manifest.json, as written by `sd3 models push` and `sd3 models pull`. The model loader only
 * checks structure and external-data sizes, so a flipped byte inside the weights would otherwise
 * be served as garbage images; this refuses to start instead, naming the file.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PipelineError } from '../errors.js';
import { MANIFEST_NAME, parseManifest } from '../models/manifest.js';
import { verifyModelDir } from '../models/sync.js';

export const MODEL_VERIFY_MODES = ['manifest', 'off'] as const;
export type ModelVerifyMode = (typeof MODEL_VERIFY_MODES)[number];

export interface ModelVerifyOptions {
  mode: ModelVerifyMode;
  /** Refuse a folder without manifest.json (instead of starting unverified). */
  requireManifest: boolean;
  /** Files hashed in parallel. */
  concurrency?: number;
}

export type ModelVerifyResult =
  | { verified: true; files: number; bytes: number; ms: number }
  | { verified: false; reason: 'off' | 'no manifest' };

/**
 * Checks `dir` against `dir/manifest.json`. Throws PipelineError('model_invalid') naming the first
 * file that is missing or differs (expected vs found size or SHA-256), a manifest that does not
 * parse, or a missing manifest when one is required.
 */
export async function verifyModelAtStart(
  dir: string,
  options: ModelVerifyOptions,
): Promise<ModelVerifyResult> {
  if (options.mode === 'off') return { verified: false, reason: 'off' };
  const path = join(dir, MANIFEST_NAME);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    if (options.requireManifest) {
      throw new PipelineError(
        'model_invalid',
        `the model folder ${dir} has no ${MANIFEST_NAME} and a manifest is required ` +
          '(push the folder with sd3 models push and pull it with sd3 models pull)',
      );
    }
    return { verified: false, reason: 'no manifest' };
  }
  const manifest = parseManifest(text, path);
  const t0 = performance.now();
  await verifyModelDir(dir, manifest, options.concurrency ?? 4);
  return {
    verified: true,
    files: manifest.files.length,
    bytes: manifest.totalBytes,
    ms: Math.round(performance.now() - t0),
  };
}
