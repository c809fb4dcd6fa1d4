import { loadSd3Tokenizers } from '../../pipeline/tokenizers/index.js';
import { type Command, parseFlags, parseNumber, printJson, requireFlag } from '../cli-io.js';

export const tokenizeCommand: Command = {
  name: 'tokenize',
  summary: 'print the CLIP-L, CLIP-G and T5 token ids diffusers would feed the encoders',
  usage: `sd3 tokenize --model DIR --prompt TEXT [--max-sequence-length N]

Reads only tokenizer/, tokenizer_2/ and tokenizer_3/ of DIR.
Prints {"clip_l":[77 ids],"clip_g":[77 ids],"t5":[N ids]} (N defaults to 256).`,
  async run(args, io) {
    const { values } = parseFlags(args, {
      model: { type: 'string' },
      prompt: { type: 'string' },
      'max-sequence-length': { type: 'string' },
    });
    const dir = requireFlag(values.model, 'model');
    if (values.prompt === undefined) requireFlag(values.prompt, 'prompt');
    const maxSequenceLength = parseNumber(values['max-sequence-length'], 'max-sequence-length', {
      integer: true,
    });
    const tokenizers = await loadSd3Tokenizers(dir);
    const ids = tokenizers.tokenize(
      values.prompt!,
      maxSequenceLength === undefined ? {} : { maxSequenceLength },
    );
    printJson(io, { clip_l: ids.clipL, clip_g: ids.clipG, t5: ids.t5 });
  },
};
