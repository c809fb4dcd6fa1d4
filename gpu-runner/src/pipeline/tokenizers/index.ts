export type { Sd3Tokenizers, TokenizedPrompt } from './sd3-tokenizers.js';
export {
  DEFAULT_MAX_SEQUENCE_LENGTH,
  loadSd3Tokenizers,
  MAX_SEQUENCE_LENGTH_LIMIT,
} from './sd3-tokenizers.js';
