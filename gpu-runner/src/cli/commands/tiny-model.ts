import { writeTinyModel } from '../../tiny-model/index.js';
import { type Command, parseFlags, parseNumber, printJson, requireFlag, UsageError } from '../cli-io.js';

export const tinyModelCommand: Command = {
  name: 'tiny-model',
  summary: 'write a tiny SD3-shaped ONNX model folder (random weights) for tests and local runs',
  usage: `sd3 tiny-model --out DIR [--dtype fp32|fp16] [--seed N] [--no-t5] [--transformer mixing|linear]

Writes the optimum export layout (model_index.json, scheduler/, tokenizer{,_2,_3}/,
text_encoder{,_2,_3}/, transformer/, vae_encoder/, vae_decoder/) with the real I/O names,
dtypes and dynamic axes, tiny widths, deterministic seeded weights, external data for the
transformer and T5, and the real SD3 tokenizer files. Images it makes are noise.
DIR must not exist or be empty; nothing is left behind on failure.`,
  async run(args, io) {
    const { values } = parseFlags(args, {
      out: { type: 'string' },
      dtype: { type: 'string', default: 'fp32' },
      seed: { type: 'string' },
      'no-t5': { type: 'boolean', default: false },
      transformer: { type: 'string', default: 'mixing' },
    });
    const out = requireFlag(values.out, 'out');
    if (values.dtype !== 'fp32' && values.dtype !== 'fp16') {
      throw new UsageError(`--dtype must be fp32 or fp16, got ${JSON.stringify(values.dtype)}`);
    }
    if (values.transformer !== 'mixing' && values.transformer !== 'linear') {
      throw new UsageError(
        `--transformer must be mixing or linear, got ${JSON.stringify(values.transformer)}`,
      );
    }
    const seed = parseNumber(values.seed, 'seed', { integer: true });
    const info = await writeTinyModel(out, {
      dtype: values.dtype,
      transformerKind: values.transformer,
      withT5: !values['no-t5'],
      ...(seed !== undefined ? { seed } : {}),
    });
    printJson(io, { dir: info.dir, dtype: info.dtype, sizes: info.sizes });
  },
};
