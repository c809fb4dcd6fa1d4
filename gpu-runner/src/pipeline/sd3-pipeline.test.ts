/**
 * The pipeline end to end on generated tiny SD3-shaped models: the closed-form check of CFG and
 * Euler, determinism, fp16, img2img, n > 1, T5 off, cancellation and every bad model folder.
 */
import assert from 'node:assert/strict';
import { cp, mkdtemp, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { PipelineError } from '../errors.js';
import { type TinyModelInfo, writeTinyModel } from '../tiny-model/index.js';
import { CanceledError } from './denoise.js';
import { randn, TorchGenerator } from './noise/index.js';
import { Sd3Pipeline } from './sd3-pipeline.js';
import { type ConditioningData, conditioningValues } from './text-conditioning.js';

const schedulerRef = JSON.parse(
  await readFile(new URL('../../../test/reference/scheduler.json', import.meta.url), 'utf8'),
) as { t2i_steps28_shift3: { sigmas: number[]; timesteps: number[] } };

let root: string;
let fp32: TinyModelInfo;
let fp16: TinyModelInfo;
let linear: TinyModelInfo;
let noT5: TinyModelInfo;

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'sd3-pipeline-'));
  [fp32, fp16, linear, noT5] = await Promise.all([
    writeTinyModel(join(root, 'fp32')),
    writeTinyModel(join(root, 'fp16'), { dtype: 'fp16' }),
    writeTinyModel(join(root, 'linear'), { transformerKind: 'linear' }),
    writeTinyModel(join(root, 'no-t5'), { withT5: false }),
  ]);
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

function mean(data: ConditioningData): number {
  const values = conditioningValues(data);
  let s = 0;
  for (const v of values) s += v;
  return s / values.length;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

describe('closed form: linear transformer', () => {
  test('CFG and Euler over 28 steps match the closed-form result', async () => {
    const pipe = await Sd3Pipeline.load(linear.dir, { provider: 'cpu' });
    try {
      const prompt = 'a lighthouse on a cliff at dusk';
      const negative = 'blurry';
      const guidance = 4.5;
      const seed = 1234;
      const result = await pipe.generate(
        { prompt, negativePrompt: negative, seed, guidanceScale: guidance, steps: 28 },
        { outputType: 'latent' },
      );
      // Independently of the pipeline: its conditioning means, the seeded noise, the reference
      // sigmas from diffusers, and float64 arithmetic.
      const seqOpts = { clipSkip: null, maxSequenceLength: 256 };
      const pos = await pipe.encode(prompt, seqOpts);
      const neg = await pipe.encode(negative, seqOpts);
      const { a, k, m, g } = linear.linear!;
      const [, c, h, w] = result.latentDims;
      const x = Float64Array.from(randn(new TorchGenerator(seed), [1, c, h, w], 'float32'));
      const { sigmas, timesteps } = schedulerRef.t2i_steps28_shift3;
      const beta = (e: typeof pos, ch: number, t: number) =>
        k[ch]! * mean(e.embeds) + m[ch]! * mean(e.pooled) + g[ch]! * (t / 1000);
      const plane = h * w;
      for (let i = 0; i < 28; i++) {
        const dt = sigmas[i + 1]! - sigmas[i]!;
        for (let ch = 0; ch < c; ch++) {
          const u = beta(neg, ch, timesteps[i]!);
          const drift = u + guidance * (beta(pos, ch, timesteps[i]!) - u);
          for (let p = 0; p < plane; p++) {
            const j = ch * plane + p;
            x[j] = x[j]! + dt * (a * x[j]! + drift);
          }
        }
      }
      // float32 rounding of ~5 ops per step over 28 steps on values of order 1-10: a few 1e-5.
      const err = maxAbsDiff(result.latents, x);
      assert.ok(err < 1e-4, `max |pipeline - closed form| = ${err}`);
      // The check can fail: swapping the CFG halves moves the result far away.
      const swapped = Float64Array.from(randn(new TorchGenerator(seed), [1, c, h, w], 'float32'));
      for (let i = 0; i < 28; i++) {
        const dt = sigmas[i + 1]! - sigmas[i]!;
        for (let ch = 0; ch < c; ch++) {
          const u = beta(pos, ch, timesteps[i]!);
          const drift = u + guidance * (beta(neg, ch, timesteps[i]!) - u);
          for (let p = 0; p < plane; p++)
            swapped[ch * plane + p]! += dt * (a * swapped[ch * plane + p]! + drift);
        }
      }
      assert.ok(maxAbsDiff(result.latents, swapped) > 1e-2);
    } finally {
      await pipe.release();
    }
  });

  test('guidance <= 1 runs the positive batch alone', async () => {
    const pipe = await Sd3Pipeline.load(linear.dir, { provider: 'cpu' });
    try {
      const prompt = 'a red bicycle';
      const result = await pipe.generate(
        { prompt, seed: 7, guidanceScale: 1, steps: 28 },
        { outputType: 'latent' },
      );
      const pos = await pipe.encode(prompt, { clipSkip: null, maxSequenceLength: 256 });
      const { a, k, m, g } = linear.linear!;
      const [, c, h, w] = result.latentDims;
      const x = Float64Array.from(randn(new TorchGenerator(7), [1, c, h, w], 'float32'));
      const { sigmas, timesteps } = schedulerRef.t2i_steps28_shift3;
      for (let i = 0; i < 28; i++) {
        const dt = sigmas[i + 1]! - sigmas[i]!;
        for (let ch = 0; ch < c; ch++) {
          const drift =
            k[ch]! * mean(pos.embeds) + m[ch]! * mean(pos.pooled) + g[ch]! * (timesteps[i]! / 1000);
          for (let p = 0; p < h * w; p++) x[ch * h * w + p]! += dt * (a * x[ch * h * w + p]! + drift);
        }
      }
      const err = maxAbsDiff(result.latents, x);
      assert.ok(err < 1e-4, `max |pipeline - closed form| = ${err}`);
    } finally {
      await pipe.release();
    }
  });
});

describe('generation on tiny models', () => {
  let pipe: Sd3Pipeline;
  before(async () => {
    pipe = await Sd3Pipeline.load(fp32.dir, { provider: 'cpu' });
  });
  after(async () => {
    await pipe.release();
  });

  test('same seed gives identical pixels, a different seed different ones', async () => {
    const params = { prompt: 'a cat', seed: 42, steps: 4 };
    const a = await pipe.generate(params);
    const b = await pipe.generate(params);
    const c = await pipe.generate({ ...params, seed: 43 });
    assert.equal(a.images.length, 1);
    assert.equal(a.images[0]!.width, 64);
    assert.equal(a.images[0]!.height, 64);
    assert.deepEqual(a.images[0]!.rgb, b.images[0]!.rgb);
    assert.notDeepEqual(a.images[0]!.rgb, c.images[0]!.rgb);
  });

  test('prompt, negative prompt, guidance and size all change the image', async () => {
    const base = { prompt: 'a cat', seed: 5, steps: 3 };
    const ref = (await pipe.generate(base)).images[0]!.rgb;
    for (const change of [
      { prompt: 'a dog' },
      { negativePrompt: 'ugly' },
      { guidanceScale: 3 },
      { clipSkip: 1 },
    ]) {
      const img = (await pipe.generate({ ...base, ...change })).images[0]!.rgb;
      assert.notDeepEqual(img, ref, JSON.stringify(change));
    }
    const wide = await pipe.generate({ ...base, width: 96, height: 48 });
    assert.equal(wide.images[0]!.width, 96);
    assert.equal(wide.images[0]!.height, 48);
    assert.deepEqual(wide.latentDims, [1, 16, 6, 12]);
  });

  test('n images per prompt: one noise draw of n rows, as diffusers', async () => {
    const one = await pipe.generate({ prompt: 'a boat', seed: 9, steps: 3 });
    const three = await pipe.generate({ prompt: 'a boat', seed: 9, steps: 3, numImages: 3 });
    assert.equal(three.images.length, 3);
    // Row 0 of a [3, C, h, w] draw is the [1, C, h, w] draw, and the rows are independent.
    assert.deepEqual(three.images[0]!.rgb, one.images[0]!.rgb);
    assert.notDeepEqual(three.images[1]!.rgb, three.images[0]!.rgb);
    assert.notDeepEqual(three.images[2]!.rgb, three.images[1]!.rgb);
  });

  test('image-to-image runs the trimmed schedule from the encoded image', async () => {
    const init = (await pipe.generate({ prompt: 'a house', seed: 1, steps: 3 })).images[0]!;
    const params = { prompt: 'a house in snow', seed: 2, steps: 10, image: init };
    const half = await pipe.generate({ ...params, strength: 0.5 });
    assert.equal(half.stepsRun, 5);
    const strong = await pipe.generate({ ...params, strength: 0.9 });
    assert.equal(strong.stepsRun, 9);
    assert.notDeepEqual(half.images[0]!.rgb, strong.images[0]!.rgb);
    const again = await pipe.generate({ ...params, strength: 0.5 });
    assert.deepEqual(again.images[0]!.rgb, half.images[0]!.rgb);
    // strength 0: no step runs and the image is the VAE round trip of the init image.
    const none = await pipe.generate({ ...params, strength: 0 });
    assert.equal(none.stepsRun, 0);
    const t2i = await pipe.generate({ prompt: 'a house in snow', seed: 2, steps: 10 });
    assert.notDeepEqual(t2i.images[0]!.rgb, half.images[0]!.rgb);
  });

  test('cancellation is honoured between steps', async () => {
    let steps = 0;
    await assert.rejects(
      pipe.generate(
        { prompt: 'a cat', seed: 1, steps: 10 },
        { onStep: () => void steps++, isCanceled: () => steps >= 3 },
      ),
      (err: unknown) => {
        assert.ok(err instanceof CanceledError);
        assert.equal(err.stepsCompleted, 3);
        assert.equal(err.totalSteps, 10);
        return true;
      },
    );
  });

  test('bad parameters are refused with the field named', async () => {
    const cases: [object, RegExp][] = [
      [{ width: 100 }, /width: must be a multiple of 16/],
      [{ height: 0 }, /height: must be a positive integer/],
      [{ steps: 0 }, /steps: must be an integer/],
      [{ numImages: 0 }, /n: must be an integer/],
      [{ guidanceScale: -1 }, /guidance_scale/],
      [{ seed: -1 }, /seed: must be an integer from 0 to 2\^64-1/],
      [{ seed: 1.5 }, /seed/],
      [{ strength: 0.5 }, /strength: needs an input image/],
      [{ maxSequenceLength: 513 }, /max_sequence_length/],
      [{ clipSkip: 99 }, /clip_skip/],
    ];
    for (const [change, message] of cases) {
      await assert.rejects(pipe.generate({ prompt: 'x', seed: 1, ...change }), (err: unknown) => {
        assert.ok(err instanceof PipelineError, String(err));
        assert.equal(err.code, 'input_invalid');
        assert.match(err.message, message);
        return true;
      });
    }
    const image = { rgb: new Uint8Array(64 * 64 * 3), width: 64, height: 64 };
    await assert.rejects(
      pipe.generate({ prompt: 'x', seed: 1, image, strength: 1.5 }),
      /strength: must be within \[0, 1\]/,
    );
  });
});

describe('model variants', () => {
  test('an fp16 export generates, with float16 noise and latents', async () => {
    const pipe = await Sd3Pipeline.load(fp16.dir, { provider: 'cpu' });
    try {
      assert.equal(pipe.model.dtype, 'float16');
      const a = await pipe.generate({ prompt: 'a cat', seed: 42, steps: 3 });
      const b = await pipe.generate({ prompt: 'a cat', seed: 42, steps: 3 });
      assert.deepEqual(a.images[0]!.rgb, b.images[0]!.rgb);
      const noise = randn(new TorchGenerator(42), [1, 16, 8, 8], 'float16');
      assert.ok(noise instanceof Uint16Array);
      const img = await pipe.generate({
        prompt: 'a cat',
        seed: 42,
        steps: 4,
        image: a.images[0]!,
        strength: 0.5,
      });
      assert.equal(img.stepsRun, 2);
    } finally {
      await pipe.release();
    }
  });

  test('T5 switched off or absent: its part of the conditioning is zeros', async () => {
    const withT5 = await Sd3Pipeline.load(fp32.dir, { provider: 'cpu' });
    const withoutT5 = await Sd3Pipeline.load(fp32.dir, { provider: 'cpu', t5: false });
    const absent = await Sd3Pipeline.load(noT5.dir, { provider: 'cpu' });
    try {
      assert.equal(withoutT5.model.t5, null);
      assert.equal(absent.model.t5, null);
      const opts = { clipSkip: null, maxSequenceLength: 256 };
      const joint = fp32.sizes.jointAttentionDim;
      const on = await withT5.encode('a cat', opts);
      const off = await withoutT5.encode('a cat', opts);
      assert.equal(off.seqLen, 77 + 256);
      assert.equal(off.embeds.length, (77 + 256) * joint);
      assert.ok(off.embeds.subarray(77 * joint).every((v) => v === 0));
      assert.deepEqual(off.embeds.subarray(0, 77 * joint), on.embeds.subarray(0, 77 * joint));
      assert.ok(on.embeds.subarray(77 * joint).some((v) => v !== 0));
      const params = { prompt: 'a cat', seed: 3, steps: 3 };
      const imgOn = (await withT5.generate(params)).images[0]!.rgb;
      const imgOff = (await withoutT5.generate(params)).images[0]!.rgb;
      assert.notDeepEqual(imgOn, imgOff);
      assert.equal((await absent.generate(params)).images.length, 1);
    } finally {
      await Promise.all([withT5.release(), withoutT5.release(), absent.release()]);
    }
  });

  test('conditioning layout: CLIP-L | CLIP-G | zeros, then T5; pooled L | G', async () => {
    const pipe = await Sd3Pipeline.load(fp32.dir, { provider: 'cpu' });
    try {
      const { clipLHidden: l, clipGHidden: g, jointAttentionDim: joint } = fp32.sizes;
      const cond = await pipe.encode('a cat', { clipSkip: null, maxSequenceLength: 100 });
      assert.equal(cond.seqLen, 177);
      for (let s = 0; s < 77; s++) {
        const row = cond.embeds.subarray(s * joint, (s + 1) * joint);
        assert.ok(
          row.subarray(l + g).every((v) => v === 0),
          'zero padding after CLIP-G',
        );
        assert.ok(row.subarray(0, l).some((v) => v !== 0));
        assert.ok(row.subarray(l, l + g).some((v) => v !== 0));
      }
      assert.equal(cond.pooled.length, fp32.sizes.clipLHidden + fp32.sizes.clipGHidden);
    } finally {
      await pipe.release();
    }
  });
});

describe('bad model folders', () => {
  async function copyModel(name: string): Promise<string> {
    const dir = join(root, `bad-${name}`);
    await cp(fp32.dir, dir, { recursive: true });
    return dir;
  }
  async function expectModelError(dir: string, pattern: RegExp, options: { t5?: boolean } = {}) {
    await assert.rejects(Sd3Pipeline.load(dir, { provider: 'cpu', ...options }), (err: unknown) => {
      assert.ok(err instanceof PipelineError, String(err));
      assert.equal(err.code, 'model_invalid');
      assert.match(err.message, pattern);
      return true;
    });
  }

  test('a missing folder, sub-model, config or tokenizer file is named by path', async () => {
    await expectModelError(join(root, 'nowhere'), /model folder .*nowhere does not exist/);
    const noTransformer = await copyModel('no-transformer');
    await rm(join(noTransformer, 'transformer', 'model.onnx'));
    await expectModelError(noTransformer, /transformer\/model\.onnx/);
    const noConfig = await copyModel('no-config');
    await rm(join(noConfig, 'vae_decoder', 'config.json'));
    await expectModelError(noConfig, /missing file .*vae_decoder\/config\.json/);
    const noVocab = await copyModel('no-vocab');
    await rm(join(noVocab, 'tokenizer_2', 'vocab.json'));
    await expectModelError(noVocab, /tokenizer_2\/vocab\.json/);
    const noIndex = await copyModel('no-index');
    await rm(join(noIndex, 'model_index.json'));
    await expectModelError(noIndex, /model_index\.json/);
  });

  test('ONNX inputs or outputs that are not the expected ones: expected vs found', async () => {
    const swapped = await copyModel('swapped');
    await cp(join(fp32.dir, 'text_encoder', 'model.onnx'), join(swapped, 'vae_decoder', 'model.onnx'));
    await expectModelError(
      swapped,
      /vae_decoder\/model\.onnx: expected input 'latent_sample', found inputs 'input_ids'/,
    );
    const widths = await copyModel('widths');
    // CLIP-L and CLIP-G graphs exchanged: same names, wrong widths.
    await cp(join(fp32.dir, 'text_encoder_2', 'model.onnx'), join(widths, 'text_encoder', 'model.onnx'));
    await expectModelError(
      widths,
      /text_encoder\/model\.onnx: output 'text_embeds' should have shape \[\*, 32\].*found \[batch_size, 48\]/,
    );
    const config = await copyModel('config');
    const cfgPath = join(config, 'transformer', 'config.json');
    const cfg = JSON.parse(await readFile(cfgPath, 'utf8'));
    await writeFile(cfgPath, JSON.stringify({ ...cfg, joint_attention_dim: 128 }));
    await expectModelError(config, /joint_attention_dim/);
  });

  test('corrupt or truncated ONNX files and external data are refused', async () => {
    const corrupt = await copyModel('corrupt');
    const vae = join(corrupt, 'vae_decoder', 'model.onnx');
    await truncate(vae, 200);
    await expectModelError(corrupt, /vae_decoder\/model\.onnx/);
    const shortData = await copyModel('short-data');
    const data = join(shortData, 'transformer', 'model.onnx_data');
    await truncate(data, 1000);
    await expectModelError(
      shortData,
      /external data file .*transformer\/model\.onnx_data is truncated: 1000 bytes/,
    );
    const noData = await copyModel('no-data');
    await rm(join(noData, 'text_encoder_3', 'model.onnx_data'));
    await expectModelError(noData, /missing external data file .*text_encoder_3\/model\.onnx_data/);
    // Without T5 the broken T5 files are never read.
    const pipe = await Sd3Pipeline.load(noData, { provider: 'cpu', t5: false });
    await pipe.release();
  });

  test('a provider that cannot load fails at start, never falls back to the CPU', async () => {
    await assert.rejects(Sd3Pipeline.load(fp32.dir, { provider: 'cuda' }), (err: unknown) => {
      assert.ok(err instanceof PipelineError);
      // On a GPU host with the CUDA libraries this would load; this suite runs on CPU-only machines.
      assert.equal(err.code, 'provider_unavailable');
      assert.match(err.message, /'cuda' could not be loaded/);
      return true;
    });
  });
});
