/**
 * File access for the tokenizer folders: every failure becomes a PipelineError('model_invalid') whose
 * message names the full path, so a broken model folder is diagnosable from the error alone.
 */
import { readFile, stat } from 'node:fs/promises';
import { PipelineError } from '../../errors.js';

function isNotFound(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

/** Throws model_invalid unless `path` is an existing directory. */
export async function requireDirectory(path: string): Promise<void> {
  let isDirectory: boolean;
  try {
    isDirectory = (await stat(path)).isDirectory();
  } catch (err) {
    if (isNotFound(err)) throw new PipelineError('model_invalid', `tokenizer folder is missing: ${path}`);
    throw new PipelineError('model_invalid', `cannot read tokenizer folder ${path}: ${String(err)}`, {
      cause: err,
    });
  }
  if (!isDirectory)
    throw new PipelineError('model_invalid', `expected a tokenizer folder, found a file: ${path}`);
}

export async function fileExists(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch (err) {
    if (isNotFound(err)) return false;
    throw new PipelineError('model_invalid', `cannot read ${path}: ${String(err)}`, { cause: err });
  }
}

export async function readTextFile(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if (isNotFound(err)) throw new PipelineError('model_invalid', `tokenizer file is missing: ${path}`);
    throw new PipelineError('model_invalid', `cannot read ${path}: ${String(err)}`, { cause: err });
  }
}

export async function readJsonFile(path: string): Promise<unknown> {
  const text = await readTextFile(path);
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new PipelineError('model_invalid', `${path} is not valid JSON: ${(err as Error).message}`, {
      cause: err,
    });
  }
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Like readJsonFile, but the top level must be a JSON object. */
export async function readJsonObject(path: string): Promise<Record<string, unknown>> {
  const value = await readJsonFile(path);
  if (!isRecord(value)) {
    throw new PipelineError('model_invalid', `${path}: expected a JSON object, found ${describe(value)}`);
  }
  return value;
}

/** Short description of a JSON value's kind for error messages. */
export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return `the string ${JSON.stringify(value.slice(0, 40))}`;
  if (typeof value === 'number' || typeof value === 'boolean') return `${typeof value} ${String(value)}`;
  return typeof value === 'object' ? 'an object' : typeof value;
}
