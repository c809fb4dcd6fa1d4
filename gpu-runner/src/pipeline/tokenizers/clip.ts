/**
 * CLIP BPE tokenizer (SD3's `tokenizer/` = CLIP-L and `tokenizer_2/` = CLIP-G). Diffusers folders ship
 * only the slow CLIPTokenizer files (vocab.json + merges.txt), so the tokenizer.json that transformers'
 * CLIPConverter would produce from them is built in memory; a folder that ships tokenizer.json uses it.
 */
import { join } from 'node:path';
import type { Tokenizer } from '@huggingface/tokenizers';
import { PipelineError } from '../../errors.js';
import type { AddedTokenJson, SpecialTokenRole, TokenizerFolderConfig } from './config.js';
import { collectAddedTokens, readTokenizerFolderConfig } from './config.js';
import { describe, fileExists, readJsonObject, readTextFile, requireDirectory } from './files.js';
import type { TokenizerJson } from './library.js';
import { createTokenizer, modelVocabLookup, readTokenizerJson, specialTokenId } from './library.js';

/** CLIPTokenizer's constructor defaults, used by transformers for roles the folder's files leave out. */
const CLIP_CLASS_DEFAULTS: Partial<Record<SpecialTokenRole, string>> = {
  bos_token: '<|startoftext|>',
  eos_token: '<|endoftext|>',
  unk_token: '<|endoftext|>',
  pad_token: '<|endoftext|>',
};

/** CLIP's pre-split pattern as CLIPConverter writes it (the input is already lower-cased). */
const CLIP_SPLIT_REGEX = String.raw`'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+`;

/**
 * The slow CLIPTokenizer reads at most 49152 - 256 - 2 merges (OpenAI's vocabulary size minus the byte
 * symbols and the two specials); the converter copies exactly those.
 */
const MAX_CLIP_MERGES = 49152 - 256 - 2;

export interface ClipTokenizer {
  readonly bosId: number;
  readonly eosId: number;
  readonly padId: number;
  /** `model_max_length` of tokenizer_config.json; undefined when the file has none. */
  readonly modelMaxLength: number | undefined;
  /** BPE ids of `text` without BOS/EOS and without truncation. */
  encodeContent(text: string): number[];
}

export function parseClipVocab(json: Record<string, unknown>, path: string): Record<string, number> {
  const vocab: Record<string, number> = {};
  for (const [token, id] of Object.entries(json)) {
    if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 0) {
      throw new PipelineError(
        'model_invalid',
        `${path}: id of ${JSON.stringify(token)}: expected a non-negative integer, found ${describe(id)}`,
      );
    }
    vocab[token] = id;
  }
  return vocab;
}

/** merges.txt: a '#version' header line, then one "left right" pair per line in rank order. */
export function parseClipMerges(text: string, path: string): [string, string][] {
  const lines = text.trim().split('\n');
  if (!lines[0]?.startsWith('#version')) {
    // The slow tokenizer drops line 1 unconditionally; a file without the header would lose a merge there.
    throw new PipelineError(
      'model_invalid',
      `${path}: expected a '#version' header on line 1, found ${JSON.stringify((lines[0] ?? '').slice(0, 40))}`,
    );
  }
  const body = lines.slice(1, 1 + MAX_CLIP_MERGES);
  return body.map((line, i) => {
    const parts = line.trim().split(/\s+/);
    if (parts.length !== 2) {
      throw new PipelineError(
        'model_invalid',
        `${path}: line ${i + 2}: expected two space-separated symbols, found ${JSON.stringify(line.slice(0, 40))}`,
      );
    }
    return [parts[0]!, parts[1]!];
  });
}

/** The tokenizer.json transformers' CLIPConverter produces for a slow CLIPTokenizer. */
export function buildClipTokenizerJson(options: {
  vocab: Record<string, number>;
  merges: [string, string][];
  addedTokens: AddedTokenJson[];
  unkToken: string;
  bos: [string, number];
  eos: [string, number];
}): TokenizerJson {
  return {
    version: '1.0',
    added_tokens: options.addedTokens,
    normalizer: {
      type: 'Sequence',
      normalizers: [
        { type: 'NFC' },
        { type: 'Replace', pattern: { Regex: String.raw`\s+` }, content: ' ' },
        { type: 'Lowercase' },
      ],
    },
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        { type: 'Split', pattern: { Regex: CLIP_SPLIT_REGEX }, behavior: 'Removed', invert: true },
        // pre_tokenizers.ByteLevel(add_prefix_space=False): use_regex and trim_offsets keep their defaults.
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
      ],
    },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: options.unkToken,
      continuing_subword_prefix: '',
      end_of_word_suffix: '</w>',
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab: options.vocab,
      merges: options.merges,
    },
    post_processor: {
      type: 'RobertaProcessing',
      sep: options.eos,
      cls: options.bos,
      trim_offsets: false,
      add_prefix_space: false,
    },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
  };
}

function requiredToken(folder: TokenizerFolderConfig, role: SpecialTokenRole, dir: string): string {
  const token = folder.specialTokens[role];
  if (token === undefined) throw new PipelineError('model_invalid', `${dir}: no ${role} configured`);
  return token.content;
}

async function buildFromSlowFiles(dir: string, folder: TokenizerFolderConfig): Promise<TokenizerJson> {
  const vocabPath = join(dir, 'vocab.json');
  const mergesPath = join(dir, 'merges.txt');
  const [vocabJson, mergesText] = await Promise.all([readJsonObject(vocabPath), readTextFile(mergesPath)]);
  const vocab = parseClipVocab(vocabJson, vocabPath);
  const merges = parseClipMerges(mergesText, mergesPath);
  const lookup = (content: string) => (Object.hasOwn(vocab, content) ? vocab[content] : undefined);
  const addedTokens = collectAddedTokens([], folder, lookup, dir);
  const idOf = (role: SpecialTokenRole): [string, number] => {
    const content = requiredToken(folder, role, dir);
    const id = addedTokens.find((t) => t.content === content)?.id ?? lookup(content);
    if (id === undefined) {
      throw new PipelineError('model_invalid', `${vocabPath}: ${role} ${JSON.stringify(content)} has no id`);
    }
    return [content, id];
  };
  return buildClipTokenizerJson({
    vocab,
    merges,
    addedTokens,
    unkToken: requiredToken(folder, 'unk_token', dir),
    bos: idOf('bos_token'),
    eos: idOf('eos_token'),
  });
}

/** Loads a CLIP tokenizer folder (tokenizer.json if present, else vocab.json + merges.txt). */
export async function loadClipTokenizer(dir: string): Promise<ClipTokenizer> {
  await requireDirectory(dir);
  const folder = await readTokenizerFolderConfig(dir, CLIP_CLASS_DEFAULTS);
  const jsonPath = join(dir, 'tokenizer.json');
  let json: TokenizerJson;
  if (await fileExists(jsonPath)) {
    json = await readTokenizerJson(jsonPath);
    json.added_tokens = collectAddedTokens(json.added_tokens, folder, modelVocabLookup(json.model), jsonPath);
  } else {
    json = await buildFromSlowFiles(dir, folder);
  }
  const tokenizer: Tokenizer = createTokenizer(json, folder.libraryConfig, dir);
  return {
    bosId: specialTokenId(tokenizer, folder, 'bos_token', dir),
    eosId: specialTokenId(tokenizer, folder, 'eos_token', dir),
    padId: specialTokenId(tokenizer, folder, 'pad_token', dir),
    modelMaxLength: folder.modelMaxLength,
    encodeContent: (text) => tokenizer.encode(text, { add_special_tokens: false }).ids,
  };
}
