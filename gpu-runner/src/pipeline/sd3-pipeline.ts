/**
 * The SD3 text-to-image and image-to-image pipeline (sd3-pipeline.md §2), exact to diffusers
 * where the host computes: tokenization, conditioning assembly, seeded CPU noise, schedule, CFG,
 * Euler and post-processing. It knows nothing of queues or object stores.
 */
import { type LoadModelOptions, loadSd3Model, outputDtype, type Sd3Model } from '../model/sd3-model.js';
import { loadGraphBytes, type OnnxModel } from '../runtime/onnx-backend.js';
import { BufferPool } from '../tensor/buffer-pool.js';
import { halfArrayToFloat32 } from '../tensor/float16.js';
import { type DenoiseHooks, denoise } from './denoise.js';
import { guidedEulerStepGraph, postprocessGraph } from './elementwise-graphs.js';
import { type GenerationParams, type ResolvedParams, resolveParams } from './generation-params.js';
import { randn, TorchGenerator } from './noise/index.js';
import { flowMatchSchedule } from './scheduler/flow-match-euler.js';
import { encodePrompt, type PromptConditioning, stackConditioning } from './text-conditioning.js';
import { loadSd3Tokenizers, type Sd3Tokenizers } from './tokenizers/index.js';
import { decodeLatents, dtypeRound, encodeImage, type RgbImage } from './vae.js';

const f = Math.fround;

interface ElementwiseGraphs {
  /** CFG + Euler in the model's dtype, with and without guidance. */
  steps: { guided: OnnxModel; plain: OnnxModel };
  postprocess: OnnxModel;
}

export interface GenerationTimings {
  encodeMs: number;
  denoiseMs: number;
  decodeMs: number;
}

export interface GenerationResult {
  params: ResolvedParams;
  /** Decoded images (empty when outputType is 'latent'). */
  images: RgbImage[];
  /** Final latents [n, C, h, w] before VAE un-scaling, as diffusers' output_type="latent". */
  latents: Float32Array;
  latentDims: [number, number, number, number];
  stepsRun: number;
  timings: GenerationTimings;
}

export interface GenerateOptions extends DenoiseHooks {
  outputType?: 'image' | 'latent';
}

export class Sd3Pipeline {
  private constructor(
    readonly model: Sd3Model,
    private readonly tokenizers: Sd3Tokenizers,
    private readonly graphs: ElementwiseGraphs,
  ) {}

  private readonly pool = new BufferPool();

  static async load(dir: string, options: LoadModelOptions): Promise<Sd3Pipeline> {
    const model = await loadSd3Model(dir, options);
    try {
      const tokenizers = await loadSd3Tokenizers(dir, { t5: model.t5 !== null });
      const decoderType = outputDtype(model.vaeDecoder, 'sample');
      const graphs: ElementwiseGraphs = {
        steps: {
          guided: await loadGraphBytes('guided_euler_step', guidedEulerStepGraph(model.dtype, true)),
          plain: await loadGraphBytes('euler_step', guidedEulerStepGraph(model.dtype, false)),
        },
        postprocess: await loadGraphBytes('postprocess', postprocessGraph(decoderType)),
      };
      return new Sd3Pipeline(model, tokenizers, graphs);
    } catch (err) {
      await model.release();
      throw err;
    }
  }

  get defaultSize(): number {
    return this.model.config.transformer.sampleSize * this.model.config.vae.scaleFactor;
  }

  resolve(params: GenerationParams): ResolvedParams {
    return resolveParams(params, this.model.config);
  }

  /** Text conditioning of one prompt (exposed for tests and diagnostics). */
  encode(
    prompt: string,
    options: { clipSkip: number | null; maxSequenceLength: number },
  ): Promise<PromptConditioning> {
    return encodePrompt(this.model, this.tokenizers, prompt, options);
  }

  async generate(input: GenerationParams, options: GenerateOptions = {}): Promise<GenerationResult> {
    const p = this.resolve(input);
    const { config, dtype } = this.model;
    const t0 = performance.now();
    const cfg = p.guidanceScale > 1;
    const seqOpts = { maxSequenceLength: p.maxSequenceLength };
    const positive = await this.encode(p.prompt, { ...seqOpts, clipSkip: p.clipSkip });
    // diffusers encodes the negative prompt with clip_skip=None even when the positive uses one.
    const entries = cfg
      ? [await this.encode(p.negativePrompt, { ...seqOpts, clipSkip: null }), positive]
      : [positive];
    const cond = stackConditioning(entries, p.numImages, this.pool);
    const t1 = performance.now();

    const c = config.transformer.inChannels;
    const h = p.height / config.vae.scaleFactor;
    const w = p.width / config.vae.scaleFactor;
    const batch = p.numImages;
    const generator = new TorchGenerator(p.seed);
    const draw = (shape: readonly number[]): Float32Array =>
      dtype === 'float16'
        ? halfArrayToFloat32(randn(generator, shape, 'float16'))
        : randn(generator, shape, 'float32');
    const schedule = flowMatchSchedule(config.scheduler, p.steps, p.image ? p.strength : 1);

    let latents: Float32Array;
    if (p.image) {
      // img2img draws the VAE-sample noise first, then the latent noise, from one generator.
      const init = await encodeImage(this.model.vaeEncoder, p.image, draw, config.vae, dtype);
      const noise = draw([batch, c, h, w]);
      const sigma = schedule.sigmas[0]!;
      const q = dtypeRound(dtype);
      const plane = init.latents.length;
      latents = new Float32Array(batch * plane);
      // scale_noise: sigma * noise + (1 - sigma) * sample, in float32 (sigma is a float32 tensor).
      const oneMinus = f(1 - sigma);
      for (let i = 0; i < latents.length; i++) {
        latents[i] = q(f(f(sigma * noise[i]!) + f(oneMinus * init.latents[i % plane]!)));
      }
    } else {
      latents = draw([batch, c, h, w]);
    }

    await denoise(
      {
        transformer: this.model.transformer,
        steps: this.graphs.steps,
        latents,
        batch,
        latentDims: [c, h, w],
        embeds: cond.embeds,
        pooled: cond.pooled,
        seqLen: cond.seqLen,
        jointDim: config.transformer.jointAttentionDim,
        pooledDim: config.transformer.pooledProjectionDim,
        guidanceScale: p.guidanceScale,
        schedule,
        dtype,
        pool: this.pool,
      },
      options,
    );
    const t2 = performance.now();
    const latentDims: [number, number, number, number] = [batch, c, h, w];
    const images =
      options.outputType === 'latent'
        ? []
        : await decodeLatents(
            this.model.vaeDecoder,
            this.graphs.postprocess,
            latents,
            latentDims,
            config.vae,
            dtype,
          );
    const t3 = performance.now();
    return {
      params: p,
      images,
      latents,
      latentDims,
      stepsRun: schedule.timesteps.length,
      timings: { encodeMs: t1 - t0, denoiseMs: t2 - t1, decodeMs: t3 - t2 },
    };
  }

  /** Calls and time spent inside onnxruntime across every session of this pipeline. */
  onnxStats(): { runs: number; runMs: number } {
    const m = this.model;
    const sessions = [
      m.clipL,
      m.clipG,
      m.t5,
      m.transformer,
      m.vaeEncoder,
      m.vaeDecoder,
      ...this.graphSessions(),
    ];
    let runs = 0;
    let runMs = 0;
    for (const s of sessions) {
      if (!s) continue;
      runs += s.stats.runs;
      runMs += s.stats.runMs;
    }
    return { runs, runMs };
  }

  /** Time spent in the pipeline's own elementwise graphs (step math, post-processing). */
  private graphSessions(): OnnxModel[] {
    const { steps, postprocess } = this.graphs;
    return [steps.guided, steps.plain, postprocess];
  }

  elementwiseStats(): { runs: number; runMs: number } {
    const all = this.graphSessions();
    return {
      runs: all.reduce((a, g) => a + g.stats.runs, 0),
      runMs: all.reduce((a, g) => a + g.stats.runMs, 0),
    };
  }

  async release(): Promise<void> {
    await Promise.all([this.model.release(), ...this.graphSessions().map((g) => g.release())]);
  }
}
