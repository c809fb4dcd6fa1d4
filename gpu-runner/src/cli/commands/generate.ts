import { randomBytes } from 'node:crypto';
import { readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, extname, join } from 'node:path';
import { PipelineError } from '../../errors.js';
import {
  decodeInputImage,
  encodeOutputImage,
  IMAGE_FORMATS,
  type ImageFormat,
} from '../../image/image-codec.js';
import { toSeed } from '../../pipeline/generation-params.js';
import { EXECUTION_PROVIDERS, type ExecutionProvider } from '../../runtime/onnx-backend.js';
import { PipelineWorker } from '../../worker/pipeline-worker.js';
import { type Command, parseFlags, parseNumber, printJson, requireFlag, UsageError } from '../cli-io.js';
import { ProgressBar } from '../progress-bar.js';

/** out.png with n = 3 -> out-0.png, out-1.png, out-2.png; n = 1 keeps the path. */
export function outputPaths(out: string, format: ImageFormat, n: number): string[] {
  const ext = extname(out);
  const stem = ext ? out.slice(0, -ext.length) : out;
  const suffix = ext || `.${format === 'jpeg' ? 'jpg' : format}`;
  if (n === 1) return [ext ? out : `${stem}${suffix}`];
  return Array.from({ length: n }, (_, i) => `${stem}-${i}${suffix}`);
}

function formatFromPath(out: string): ImageFormat | undefined {
  const ext = extname(out).toLowerCase().slice(1);
  if (ext === 'jpg' || ext === 'jpeg') return 'jpeg';
  if (ext === 'png' || ext === 'webp') return ext;
  return undefined;
}

export const generateCommand: Command = {
  name: 'generate',
  summary: 'generate images from a prompt with an SD3 ONNX model folder',
  usage: `sd3 generate --model DIR --prompt TEXT --out PATH [options]

  --model DIR              optimum SD3 ONNX export folder (or one made by sd3 tiny-model)
  --prompt TEXT            what to draw
  --negative-prompt TEXT   what to avoid (default "")
  --width N, --height N    multiples of 16 (default: the model's sample size, 1024 for SD3)
  --steps N                denoising steps (default 28)
  --guidance X             classifier-free guidance scale; <= 1 turns CFG off (default 7.0)
  --seed S                 0 … 2^64-1; the same seed gives diffusers' CPU-generator noise (default random)
  --n N                    images per prompt (default 1); files get -0, -1, … suffixes
  --image FILE             image-to-image: init image (PNG, JPEG or WebP), resized to the output size
  --strength X             image-to-image strength in [0, 1] (default 0.6)
  --format png|jpeg|webp   output format (default: from --out's extension, else png)
  --quality N              JPEG/WebP quality 1-100 (default 90)
  --provider cpu|cuda|tensorrt   onnxruntime execution provider (default cpu); no silent fallback
  --no-t5                  run without the T5 encoder (its part of the conditioning is zeros)
  --clip-skip N            skip the last N CLIP layers
  --max-sequence-length N  T5 tokens (default 256, at most 512)
  --out PATH               output file; written only when every image succeeded
  --json                   print a JSON summary instead of a progress bar`,
  async run(args, io) {
    const { values } = parseFlags(args, {
      model: { type: 'string' },
      prompt: { type: 'string' },
      'negative-prompt': { type: 'string' },
      width: { type: 'string' },
      height: { type: 'string' },
      steps: { type: 'string' },
      guidance: { type: 'string' },
      seed: { type: 'string' },
      n: { type: 'string' },
      image: { type: 'string' },
      strength: { type: 'string' },
      format: { type: 'string' },
      quality: { type: 'string' },
      provider: { type: 'string', default: 'cpu' },
      'no-t5': { type: 'boolean', default: false },
      'clip-skip': { type: 'string' },
      'max-sequence-length': { type: 'string' },
      out: { type: 'string' },
      json: { type: 'boolean', default: false },
    });
    const modelDir = requireFlag(values.model, 'model');
    if (values.prompt === undefined) requireFlag(values.prompt, 'prompt');
    const out = requireFlag(values.out, 'out');
    const provider = values.provider as ExecutionProvider;
    if (!EXECUTION_PROVIDERS.includes(provider)) {
      throw new UsageError(
        `--provider must be one of ${EXECUTION_PROVIDERS.join(', ')}, got ${JSON.stringify(values.provider)}`,
      );
    }
    const format = (values.format ?? formatFromPath(out) ?? 'png') as ImageFormat;
    if (!IMAGE_FORMATS.includes(format)) {
      throw new UsageError(
        `--format must be one of ${IMAGE_FORMATS.join(', ')}, got ${JSON.stringify(values.format)}`,
      );
    }
    if (values.strength !== undefined && values.image === undefined)
      throw new UsageError('--strength needs --image');
    const seed = values.seed === undefined ? randomBytes(4).readUInt32BE() : toSeed(values.seed);
    const n = parseNumber(values.n, 'n', { integer: true }) ?? 1;
    const quality = parseNumber(values.quality, 'quality', { integer: true });
    const width = parseNumber(values.width, 'width', { integer: true });
    const height = parseNumber(values.height, 'height', { integer: true });
    const steps = parseNumber(values.steps, 'steps', { integer: true });
    const guidanceScale = parseNumber(values.guidance, 'guidance');
    const strength = parseNumber(values.strength, 'strength');
    const clipSkip = parseNumber(values['clip-skip'], 'clip-skip', { integer: true });
    const maxSequenceLength = parseNumber(values['max-sequence-length'], 'max-sequence-length', {
      integer: true,
    });
    if (strength !== undefined && !(strength >= 0 && strength <= 1)) {
      throw new UsageError(`--strength must be within [0, 1], got ${strength}`);
    }
    for (const [flag, v] of [
      ['width', width],
      ['height', height],
    ] as const) {
      if (v !== undefined && (v <= 0 || v % 16 !== 0))
        throw new UsageError(`--${flag} must be a positive multiple of 16, got ${v}`);
    }
    const outDir = dirname(out);
    try {
      if (!(await stat(outDir)).isDirectory()) throw new Error();
    } catch {
      throw new UsageError(`--out: folder ${outDir} does not exist`);
    }
    let imageBytes: Buffer | undefined;
    if (values.image !== undefined) {
      try {
        imageBytes = await readFile(values.image);
      } catch {
        throw new UsageError(`--image: cannot read ${values.image}`);
      }
    }

    const t0 = performance.now();
    const worker = await PipelineWorker.start({ modelDir, provider, t5: !values['no-t5'] });
    try {
      const size = worker.info.defaultSize;
      const w = width ?? size;
      const h = height ?? size;
      const image = imageBytes ? await decodeInputImage(imageBytes, w, h) : undefined;
      const bar = values.json ? null : new ProgressBar(io.stderr, 'denoising');
      const result = await worker
        .generate(
          {
            prompt: values.prompt!,
            ...(values['negative-prompt'] !== undefined ? { negativePrompt: values['negative-prompt'] } : {}),
            width: w,
            height: h,
            seed,
            numImages: n,
            ...(steps !== undefined ? { steps } : {}),
            ...(guidanceScale !== undefined ? { guidanceScale } : {}),
            ...(image ? { image } : {}),
            ...(strength !== undefined ? { strength } : {}),
            ...(clipSkip !== undefined ? { clipSkip } : {}),
            ...(maxSequenceLength !== undefined ? { maxSequenceLength } : {}),
          },
          {
            onStep: ({ step, totalSteps }) => bar?.update(step, totalSteps),
            ...(io.signal ? { signal: io.signal } : {}),
          },
        )
        .finally(() => bar?.finish());
      const p = result.params;
      const metadata = {
        prompt: p.prompt,
        negative_prompt: p.negativePrompt,
        width: p.width,
        height: p.height,
        steps: p.steps,
        guidance_scale: p.guidanceScale,
        seed: p.seed.toString(),
        n: p.numImages,
        ...(p.image ? { strength: p.strength } : {}),
        t5: worker.info.hasT5,
        model: basename(modelDir),
        generator: 'sd3-serverless',
      };
      const t1 = performance.now();
      const files = await Promise.all(
        result.images.map((img, i) =>
          encodeOutputImage(img, format, {
            ...(quality !== undefined ? { quality } : {}),
            metadata: { ...metadata, index: i },
          }),
        ),
      );
      const t2 = performance.now();
      const paths = outputPaths(out, format, files.length);
      await writeAllOrNothing(paths, files);
      const summary = {
        outputs: paths.map((path, i) => ({
          path,
          bytes: files[i]!.length,
          width: p.width,
          height: p.height,
          format,
        })),
        ...metadata,
        steps_run: result.stepsRun,
        provider,
        dtype: worker.info.dtype,
        timings_ms: {
          load: Math.round(worker.info.loadMs),
          encode: Math.round(result.timings.encodeMs),
          denoise: Math.round(result.timings.denoiseMs),
          decode: Math.round(result.timings.decodeMs),
          image_encode: Math.round(t2 - t1),
          total: Math.round(performance.now() - t0),
        },
      };
      if (values.json) printJson(io, summary);
      else io.stderr.write(`wrote ${paths.join(', ')} (seed ${p.seed})\n`);
    } finally {
      await worker.close();
    }
  },
};

/** Writes every file to a temporary name first and renames only when all are written. */
async function writeAllOrNothing(paths: string[], files: Buffer[]): Promise<void> {
  const temps = paths.map((p) =>
    join(dirname(p), `.${basename(p)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`),
  );
  try {
    await Promise.all(temps.map((t, i) => writeFile(t, files[i]!)));
    for (let i = 0; i < paths.length; i++) await rename(temps[i]!, paths[i]!);
  } catch (err) {
    await Promise.all(temps.map((t) => rm(t, { force: true })));
    throw new PipelineError('internal', `cannot write ${paths.join(', ')}: ${(err as Error).message}`, {
      cause: err,
    });
  }
}
