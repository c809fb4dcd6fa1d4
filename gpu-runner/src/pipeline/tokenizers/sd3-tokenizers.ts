/**
 * The three SD3 prompt tokenizers with diffusers' StableDiffusion3Pipeline semantics: CLIP-L and CLIP-G
 * give BOS + at most (max - 2) BPE ids + EOS padded to the CLIP max length with each tokenizer's own pad
 * id; T5 gives at most (n - 1) ids + `</s>` padded with `<pad>` to max_sequence_length n.
 */
import { join } from 'node:path';
import { PipelineError } from '../../errors.js';
import type { ClipTokenizer } from './clip.js';
import { loadClipTokenizer } from './clip.js';
import { toFixedLength } from './fixed-length.js';
import type { T5Tokenizer } from './t5.js';
import { loadT5Tokenizer } from './t5.js';

export interface TokenizedPrompt {
  clipL: number[];
  clipG: number[];
  t5: number[];
}

export interface Sd3Tokenizers {
  /** Token ids for the three encoders with diffusers' truncation and padding. */
  tokenize(prompt: string, options?: { maxSequenceLength?: number }): TokenizedPrompt;
  /** The CLIP sequence length (CLIP-L's model_max_length, 77 for SD3). */
  readonly clipMaxLength: number;
}

/** diffusers' default `max_sequence_length` for T5. */
export const DEFAULT_MAX_SEQUENCE_LENGTH = 256;
/** diffusers' check_inputs rejects `max_sequence_length > 512`. */
export const MAX_SEQUENCE_LENGTH_LIMIT = 512;
/**
 * diffusers' own fallback when the pipeline has no CLIP tokenizer; used only if tokenizer_config.json has
 * no model_max_length.
 */
const FALLBACK_CLIP_MAX_LENGTH = 77;

function clipMaxLengthOf(clipL: ClipTokenizer, dir: string): number {
  const value = clipL.modelMaxLength ?? FALLBACK_CLIP_MAX_LENGTH;
  // Also rejects transformers' "no limit" sentinel (1e30), which is not a safe integer.
  if (!Number.isSafeInteger(value) || value < 2) {
    throw new PipelineError(
      'model_invalid',
      `${join(dir, 'tokenizer_config.json')}: model_max_length: expected an integer >= 2, found ${value}`,
    );
  }
  return value;
}

function resolveMaxSequenceLength(value: number | undefined): number {
  if (value === undefined) return DEFAULT_MAX_SEQUENCE_LENGTH;
  if (!Number.isInteger(value) || value < 1 || value > MAX_SEQUENCE_LENGTH_LIMIT) {
    throw new PipelineError(
      'input_invalid',
      `maxSequenceLength: expected an integer from 1 to ${MAX_SEQUENCE_LENGTH_LIMIT}, found ${String(value)}`,
    );
  }
  return value;
}

/**
 * Loads tokenizer/, tokenizer_2/ and tokenizer_3/ from a model folder (reads nothing else). T5 may be
 * skipped with { t5: false }, then t5 ids are an empty array.
 */
export async function loadSd3Tokenizers(
  modelDir: string,
  options?: { t5?: boolean },
): Promise<Sd3Tokenizers> {
  const clipLDir = join(modelDir, 'tokenizer');
  const [clipL, clipG, t5] = await Promise.all([
    loadClipTokenizer(clipLDir),
    loadClipTokenizer(join(modelDir, 'tokenizer_2')),
    options?.t5 === false ? Promise.resolve(undefined) : loadT5Tokenizer(join(modelDir, 'tokenizer_3')),
  ]);
  // diffusers pads both CLIP prompts to tokenizer.model_max_length (CLIP-L's), whatever tokenizer_2 says.
  const clipMaxLength = clipMaxLengthOf(clipL, clipLDir);
  return {
    clipMaxLength,
    tokenize(prompt, tokenizeOptions) {
      if (typeof prompt !== 'string') {
        throw new PipelineError('input_invalid', `prompt: expected a string, found ${typeof prompt}`);
      }
      const maxSequenceLength = resolveMaxSequenceLength(tokenizeOptions?.maxSequenceLength);
      return {
        clipL: clipIds(clipL, prompt, clipMaxLength),
        clipG: clipIds(clipG, prompt, clipMaxLength),
        t5: t5 === undefined ? [] : t5Ids(t5, prompt, maxSequenceLength),
      };
    },
  };
}

function clipIds(tokenizer: ClipTokenizer, prompt: string, maxLength: number): number[] {
  const specials = { prefix: [tokenizer.bosId], suffix: [tokenizer.eosId] };
  return toFixedLength(tokenizer.encodeContent(prompt), specials, maxLength, tokenizer.padId);
}

function t5Ids(tokenizer: T5Tokenizer, prompt: string, maxLength: number): number[] {
  const specials = { prefix: [], suffix: [tokenizer.eosId] };
  return toFixedLength(tokenizer.encodeContent(prompt), specials, maxLength, tokenizer.padId);
}
