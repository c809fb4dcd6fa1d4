/**
 * The bridge to @huggingface/tokenizers: reading tokenizer.json files, constructing the library's
 * Tokenizer with errors mapped to PipelineError, and token-id lookups.
 */
import { Tokenizer } from '@huggingface/tokenizers';
import { PipelineError } from '../../errors.js';
import type { AddedTokenJson, SpecialTokenRole, TokenizerFolderConfig } from './config.js';
import { parseAddedTokensArray } from './config.js';
import { describe, isRecord, readJsonObject } from './files.js';

/** The parts of a tokenizer.json that this module reads or writes; the rest passes through untouched. */
export interface TokenizerJson {
  added_tokens: AddedTokenJson[];
  normalizer: unknown;
  pre_tokenizer: unknown;
  model: Record<string, unknown>;
  post_processor: unknown;
  decoder: unknown;
  [key: string]: unknown;
}

const PIPELINE_KEYS = ['normalizer', 'pre_tokenizer', 'post_processor', 'decoder'] as const;

export async function readTokenizerJson(path: string): Promise<TokenizerJson> {
  const json = await readJsonObject(path);
  const model = json['model'];
  if (!isRecord(model)) {
    throw new PipelineError('model_invalid', `${path}: model: expected an object, found ${describe(model)}`);
  }
  // tokenizers writes null for absent components; the library needs every key to be present.
  const result: TokenizerJson = {
    ...json,
    model,
    added_tokens: parseAddedTokensArray(json['added_tokens'], `${path}: added_tokens`),
    normalizer: null,
    pre_tokenizer: null,
    post_processor: null,
    decoder: null,
  };
  for (const key of PIPELINE_KEYS) result[key] = json[key] ?? null;
  return result;
}

/** A token's id in a tokenizer.json model vocabulary (BPE/WordPiece map or Unigram piece list). */
export function modelVocabLookup(model: Record<string, unknown>): (content: string) => number | undefined {
  const vocab = model['vocab'];
  if (Array.isArray(vocab)) {
    const ids = new Map<string, number>();
    vocab.forEach((entry: unknown, i) => {
      if (Array.isArray(entry) && typeof entry[0] === 'string' && !ids.has(entry[0])) ids.set(entry[0], i);
    });
    return (content) => ids.get(content);
  }
  if (isRecord(vocab)) {
    return (content) => {
      const id = Object.hasOwn(vocab, content) ? vocab[content] : undefined;
      return typeof id === 'number' ? id : undefined;
    };
  }
  return () => undefined;
}

/** Constructs the library tokenizer; a config the library rejects (bad regex, unknown type) is model_invalid. */
export function createTokenizer(
  json: TokenizerJson,
  config: Record<string, unknown>,
  dir: string,
): Tokenizer {
  try {
    return new Tokenizer(json, config);
  } catch (err) {
    throw new PipelineError(
      'model_invalid',
      `cannot build the tokenizer in ${dir}: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
}

/** The id of a special token, which must exist both in the folder's config and in the vocabulary. */
export function specialTokenId(
  tokenizer: Tokenizer,
  folder: TokenizerFolderConfig,
  role: SpecialTokenRole,
  dir: string,
): number {
  const token = folder.specialTokens[role];
  if (token === undefined) {
    throw new PipelineError(
      'model_invalid',
      `${dir}: no ${role} in tokenizer_config.json or special_tokens_map.json`,
    );
  }
  const id = tokenizer.token_to_id(token.content);
  if (id === undefined) {
    throw new PipelineError(
      'model_invalid',
      `${dir}: ${role} ${JSON.stringify(token.content)} is not in the tokenizer's vocabulary`,
    );
  }
  return id;
}
