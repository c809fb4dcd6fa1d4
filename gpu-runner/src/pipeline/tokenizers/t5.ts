/**
 * T5 Unigram tokenizer (SD3's `tokenizer_3/`), loaded from its tokenizer.json. spiece.model is not read:
 * diffusers loads T5TokenizerFast, whose behaviour tokenizer.json describes completely.
 */
import { join } from 'node:path';
import type { SpecialTokenRole } from './config.js';
import { collectAddedTokens, readTokenizerFolderConfig } from './config.js';
import { requireDirectory } from './files.js';
import { createTokenizer, modelVocabLookup, readTokenizerJson, specialTokenId } from './library.js';

/** T5Tokenizer's constructor defaults, used by transformers for roles the folder's files leave out. */
const T5_CLASS_DEFAULTS: Partial<Record<SpecialTokenRole, string>> = {
  eos_token: '</s>',
  unk_token: '<unk>',
  pad_token: '<pad>',
};

export interface T5Tokenizer {
  readonly eosId: number;
  readonly padId: number;
  /** SentencePiece ids of `text` without `</s>` and without truncation. */
  encodeContent(text: string): number[];
}

export async function loadT5Tokenizer(dir: string): Promise<T5Tokenizer> {
  await requireDirectory(dir);
  const folder = await readTokenizerFolderConfig(dir, T5_CLASS_DEFAULTS);
  const jsonPath = join(dir, 'tokenizer.json');
  const json = await readTokenizerJson(jsonPath);
  json.added_tokens = collectAddedTokens(json.added_tokens, folder, modelVocabLookup(json.model), jsonPath);
  const tokenizer = createTokenizer(json, folder.libraryConfig, dir);
  return {
    eosId: specialTokenId(tokenizer, folder, 'eos_token', dir),
    padId: specialTokenId(tokenizer, folder, 'pad_token', dir),
    encodeContent: (text) => tokenizer.encode(text, { add_special_tokens: false }).ids,
  };
}
