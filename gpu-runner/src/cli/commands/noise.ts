import { toSeed } from '../../pipeline/generation-params.js';
import { type NoiseDtype, noiseSummary, randn, TorchGenerator } from '../../pipeline/noise/index.js';
import { type Command, parseFlags, printJson, requireFlag, UsageError } from '../cli-io.js';

export const noiseCommand: Command = {
  name: 'noise',
  summary: 'draw seeded noise exactly as torch.randn on a CPU generator and summarise it',
  usage: `sd3 noise --seed S --shape 1,16,128,128 [--dtype float32|float16]

Prints {"shape":[...],"dtype":...,"head":[first 16 values],"sum":...,"sha256":"..."},
the SHA-256 taken over the little-endian element bytes.`,
  async run(args, io) {
    const { values } = parseFlags(args, {
      seed: { type: 'string' },
      shape: { type: 'string' },
      dtype: { type: 'string', default: 'float32' },
    });
    const seed = toSeed(requireFlag(values.seed, 'seed'));
    const shapeText = requireFlag(values.shape, 'shape');
    const shape = shapeText.split(',').map((s) => Number(s.trim()));
    if (shape.some((d) => !Number.isInteger(d) || d <= 0)) {
      throw new UsageError(
        `--shape must be comma-separated positive integers, got ${JSON.stringify(shapeText)}`,
      );
    }
    if (shape.reduce((a, b) => a * b, 1) > 2 ** 28)
      throw new UsageError('--shape has more than 2^28 elements');
    const dtype = values.dtype as NoiseDtype;
    if (dtype !== 'float32' && dtype !== 'float16') {
      throw new UsageError(`--dtype must be float32 or float16, got ${JSON.stringify(values.dtype)}`);
    }
    const data = randn(new TorchGenerator(seed), shape, dtype);
    printJson(io, noiseSummary(shape, dtype, data));
  },
};
