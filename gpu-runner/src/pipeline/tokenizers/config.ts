/**
 * Reads a transformers tokenizer folder's tokenizer_config.json and special_tokens_map.json: the special
 * tokens, the added tokens and model_max_length, with transformers' precedence and defaults.
 */
import { join } from 'node:path';
import { PipelineError } from '../../errors.js';
import { describe, fileExists, isRecord, readJsonObject } from './files.js';

/** One entry of tokenizer.json's `added_tokens` (the shape @huggingface/tokenizers reads). */
export interface AddedTokenJson {
  id: number;
  content: string;
  single_word: boolean;
  lstrip: boolean;
  rstrip: boolean;
  normalized: boolean;
  special: boolean;
}

export type TokenSpec = Omit<AddedTokenJson, 'id'>;

const SPECIAL_ROLES = ['bos_token', 'eos_token', 'unk_token', 'pad_token'] as const;
export type SpecialTokenRole = (typeof SPECIAL_ROLES)[number];

/** Every special-token field that transformers may store as an AddedToken object instead of a string. */
const STRING_TOKEN_FIELDS = [
  'bos_token',
  'eos_token',
  'unk_token',
  'pad_token',
  'sep_token',
  'cls_token',
  'mask_token',
];

export interface TokenizerFolderConfig {
  /** tokenizer_config.json with special-token fields flattened to strings, the form @huggingface/tokenizers reads. */
  libraryConfig: Record<string, unknown>;
  /** bos/eos/unk/pad as transformers resolves them (special_tokens_map.json overrides tokenizer_config.json). */
  specialTokens: Partial<Record<SpecialTokenRole, TokenSpec>>;
  /** The entries of tokenizer_config.json's `added_tokens_decoder`. */
  addedTokens: AddedTokenJson[];
  /** `model_max_length`, undefined when the file has none. */
  modelMaxLength: number | undefined;
}

function optionalBoolean(
  obj: Record<string, unknown>,
  key: string,
  fallback: boolean,
  where: string,
): boolean {
  const value = obj[key];
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') {
    throw new PipelineError('model_invalid', `${where}.${key}: expected a boolean, found ${describe(value)}`);
  }
  return value;
}

/**
 * A token given as a string or as a serialized AddedToken. Special tokens default to normalized=false,
 * as transformers' AddedToken(content, special=True) does.
 */
function parseTokenSpec(value: unknown, special: boolean, where: string): TokenSpec {
  if (typeof value === 'string') {
    return {
      content: value,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: !special,
      special,
    };
  }
  if (!isRecord(value) || typeof value['content'] !== 'string') {
    throw new PipelineError(
      'model_invalid',
      `${where}: expected a token string or an object with a string "content", found ${describe(value)}`,
    );
  }
  const isSpecial = optionalBoolean(value, 'special', special, where);
  return {
    content: value['content'],
    single_word: optionalBoolean(value, 'single_word', false, where),
    lstrip: optionalBoolean(value, 'lstrip', false, where),
    rstrip: optionalBoolean(value, 'rstrip', false, where),
    normalized: optionalBoolean(value, 'normalized', !isSpecial, where),
    special: isSpecial,
  };
}

function parseAddedTokensDecoder(value: unknown, where: string): AddedTokenJson[] {
  if (value === undefined) return [];
  if (!isRecord(value)) {
    throw new PipelineError(
      'model_invalid',
      `${where}: expected an object keyed by token id, found ${describe(value)}`,
    );
  }
  return Object.entries(value).map(([key, entry]) => {
    const id = Number(key);
    if (!Number.isSafeInteger(id) || id < 0) {
      throw new PipelineError(
        'model_invalid',
        `${where}: expected non-negative integer keys, found "${key}"`,
      );
    }
    return { id, ...parseTokenSpec(entry, false, `${where}["${key}"]`) };
  });
}

/**
 * Reads tokenizer_config.json (required) and special_tokens_map.json (optional) of one tokenizer folder.
 * `classDefaults` are the tokenizer class's constructor defaults, which transformers uses for roles that
 * neither file names.
 */
export async function readTokenizerFolderConfig(
  dir: string,
  classDefaults: Partial<Record<SpecialTokenRole, string>>,
): Promise<TokenizerFolderConfig> {
  const configPath = join(dir, 'tokenizer_config.json');
  const config = await readJsonObject(configPath);
  const mapPath = join(dir, 'special_tokens_map.json');
  const specialMap = (await fileExists(mapPath)) ? await readJsonObject(mapPath) : {};

  const specialTokens: Partial<Record<SpecialTokenRole, TokenSpec>> = {};
  for (const role of SPECIAL_ROLES) {
    // transformers applies special_tokens_map.json on top of tokenizer_config.json's values.
    if (specialMap[role] != null) {
      specialTokens[role] = parseTokenSpec(specialMap[role], true, `${mapPath}: ${role}`);
    } else if (config[role] != null) {
      specialTokens[role] = parseTokenSpec(config[role], true, `${configPath}: ${role}`);
    } else if (classDefaults[role] !== undefined) {
      specialTokens[role] = parseTokenSpec(classDefaults[role], true, `default ${role}`);
    }
  }

  const libraryConfig: Record<string, unknown> = { ...config };
  delete libraryConfig['added_tokens_decoder'];
  for (const field of STRING_TOKEN_FIELDS) {
    const value = specialMap[field] ?? config[field];
    if (value == null) {
      const fallback = specialTokens[field as SpecialTokenRole];
      if (fallback !== undefined) libraryConfig[field] = fallback.content;
      continue;
    }
    libraryConfig[field] = parseTokenSpec(value, true, `${configPath}: ${field}`).content;
  }
  const additional = specialMap['additional_special_tokens'] ?? config['additional_special_tokens'];
  if (additional !== undefined) {
    if (!Array.isArray(additional)) {
      throw new PipelineError(
        'model_invalid',
        `${configPath}: additional_special_tokens: expected an array, found ${describe(additional)}`,
      );
    }
    libraryConfig['additional_special_tokens'] = additional.map(
      (token, i) => parseTokenSpec(token, true, `${configPath}: additional_special_tokens[${i}]`).content,
    );
  }

  const maxLength = config['model_max_length'];
  if (maxLength !== undefined && (typeof maxLength !== 'number' || !Number.isFinite(maxLength))) {
    throw new PipelineError(
      'model_invalid',
      `${configPath}: model_max_length: expected a number, found ${describe(maxLength)}`,
    );
  }

  return {
    libraryConfig,
    specialTokens,
    addedTokens: parseAddedTokensDecoder(
      config['added_tokens_decoder'],
      `${configPath}: added_tokens_decoder`,
    ),
    modelMaxLength: maxLength,
  };
}

/**
 * The added tokens a transformers tokenizer ends up with: the ones already in tokenizer.json (if any), then
 * added_tokens_decoder, then the special tokens themselves (transformers registers every special token as
 * an added token, so it is split out of the text before BPE). `lookupId` gives a token's vocabulary id.
 */
export function collectAddedTokens(
  fromTokenizerJson: readonly AddedTokenJson[],
  folder: TokenizerFolderConfig,
  lookupId: (content: string) => number | undefined,
  where: string,
): AddedTokenJson[] {
  const result = [...fromTokenizerJson];
  const seen = new Set(result.map((t) => t.content));
  for (const token of folder.addedTokens) {
    if (seen.has(token.content)) continue;
    result.push(token);
    seen.add(token.content);
  }
  for (const role of SPECIAL_ROLES) {
    const token = folder.specialTokens[role];
    if (token === undefined || seen.has(token.content)) continue;
    const id = lookupId(token.content);
    if (id === undefined) {
      throw new PipelineError(
        'model_invalid',
        `${where}: ${role} ${JSON.stringify(token.content)} is neither in the vocabulary nor an added token`,
      );
    }
    result.push({ id, ...token });
    seen.add(token.content);
  }
  return result;
}

/** Parses the `added_tokens` array of a tokenizer.json file. */
export function parseAddedTokensArray(value: unknown, where: string): AddedTokenJson[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) {
    throw new PipelineError('model_invalid', `${where}: expected an array, found ${describe(value)}`);
  }
  return value.map((entry: unknown, i) => {
    const id = isRecord(entry) ? entry['id'] : undefined;
    if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 0) {
      throw new PipelineError('model_invalid', `${where}[${i}].id: expected a non-negative integer`);
    }
    return { id, ...parseTokenSpec(entry, false, `${where}[${i}]`) };
  });
}
