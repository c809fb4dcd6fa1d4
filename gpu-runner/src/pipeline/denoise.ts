/**
 * The flow-matching Euler loop with classifier-free guidance (sd3-pipeline.md §2.3, §2.6).
 * Per step: one transformer call on [negative; positive] (or the positive batch alone when
 * guidance <= 1), then CFG and the Euler update, which also write the next step's transformer
 * input (see the two steppers below). Conditioning tensors are built once; every buffer is
 * allocated once and filled in place.
 */
import { PipelineError } from '../errors.js';
import type { HostTensor, OnnxModel } from '../runtime/onnx-backend.js';
import type { BufferPool } from '../tensor/buffer-pool.js';
import type { FloatDtype } from '../tensor/host-tensor.js';
import { floatTensor, product, tensorValues } from '../tensor/host-tensor.js';
import { isPreviewStep } from './latent-preview.js';
import type { Schedule } from './scheduler/flow-match-euler.js';
import type { ConditioningData } from './text-conditioning.js';

export interface StepProgress {
  /** Steps finished so far (1-based after the first step). */
  step: number;
  totalSteps: number;
}

/**
 * The loop's latents after a preview step, as views into its working buffers: valid only during
 * the call (the next step overwrites them), so a hook reads them synchronously and keeps nothing.
 */
export interface LatentSnapshot extends StepProgress {
  dtype: FloatDtype;
  /** [batch, channels, h, w]. */
  dims: readonly [number, number, number, number];
  /** The latents after this step: float32 values, or float16 bit patterns. */
  latent: Float32Array | Uint16Array;
  /** The latents before this step and the step's sigmas (for the denoised estimate). */
  previous: Float32Array | Uint16Array;
  sigma: number;
  sigmaNext: number;
}

export interface DenoiseHooks {
  onStep?: (progress: StepProgress) => void;
  /**
   * Live previews: `onLatent` gets the latents every few steps, at most `maxPreviews` times and
   * never after the last step (latent-preview.ts isPreviewStep). Absent: no snapshot is taken.
   */
  previews?: { maxPreviews: number; onLatent: (snapshot: LatentSnapshot) => void };
  /** Checked before every step; true stops the loop with a 'canceled' PipelineError. */
  isCanceled?: () => boolean;
}

export interface DenoiseInput {
  transformer: OnnxModel;
  /** guidedEulerStepGraph(dtype, cfg) with and without guidance (elementwise-graphs.ts). */
  steps: { guided: OnnxModel; plain: OnnxModel };
  /** Latents [batch, channels, h, w] in the pipeline dtype; updated in place. */
  latents: Float32Array;
  batch: number;
  latentDims: readonly [number, number, number];
  /** Conditioning for the transformer batch: [negative rows; positive rows] with CFG. */
  embeds: ConditioningData;
  pooled: ConditioningData;
  seqLen: number;
  jointDim: number;
  pooledDim: number;
  guidanceScale: number;
  schedule: Schedule;
  dtype: FloatDtype;
  /** Working buffers reused between generations. */
  pool: BufferPool;
}

export class CanceledError extends PipelineError {
  constructor(
    readonly stepsCompleted: number,
    readonly totalSteps: number,
  ) {
    super('canceled', `canceled after ${stepsCompleted} of ${totalSteps} steps`);
  }
}

function inputType(model: OnnxModel, name: string): FloatDtype {
  return model.inputs.find((i) => i.name === name)!.dtype as FloatDtype;
}

export async function denoise(input: DenoiseInput, hooks: DenoiseHooks = {}): Promise<void> {
  const { transformer, batch, schedule, guidanceScale } = input;
  const cfg = guidanceScale > 1;
  const modelBatch = cfg ? 2 * batch : batch;
  const [c, h, w] = input.latentDims;
  const inputDims = [modelBatch, c, h, w];
  const timestepType = inputType(transformer, 'timestep');
  // Built once, already in the transformer's input dtypes (text-conditioning.ts).
  const conditioning = (data: ConditioningData, dims: number[]): HostTensor =>
    data instanceof Uint16Array ? { dtype: 'float16', dims, data } : { dtype: 'float32', dims, data };
  const staticFeeds: Record<string, HostTensor> = {
    encoder_hidden_states: conditioning(input.embeds, [modelBatch, input.seqLen, input.jointDim]),
    pooled_projections: conditioning(input.pooled, [modelBatch, input.pooledDim]),
  };
  const step = graphStepper(input, inputDims);
  const timesteps = new Float32Array(modelBatch);
  const total = schedule.timesteps.length;
  for (let i = 0; i < total; i++) {
    if (hooks.isCanceled?.()) throw new CanceledError(i, total);
    await transformer.run(
      {
        ...staticFeeds,
        hidden_states: step.modelInput(),
        timestep: floatTensor(timesteps.fill(schedule.timesteps[i]!), [modelBatch], timestepType),
      },
      { out_hidden_states: step.output },
    );
    await step.advance(cfg, guidanceScale, schedule.sigmas[i]!, schedule.sigmas[i + 1]!);
    const previews = hooks.previews;
    if (previews && isPreviewStep(i + 1, total, previews.maxPreviews)) {
      previews.onLatent({
        step: i + 1,
        totalSteps: total,
        dtype: input.dtype,
        dims: [batch, c, h, w],
        ...step.latents(),
        sigma: schedule.sigmas[i]!,
        sigmaNext: schedule.sigmas[i + 1]!,
      });
    }
    hooks.onStep?.({ step: i + 1, totalSteps: total });
  }
  step.finish();
}

/**
 * The state between transformer calls: latents, the transformer input ([latents; latents] with
 * CFG) and the transformer output, all allocated once; onnxruntime fills the output in place.
 */
interface Stepper {
  output: HostTensor;
  modelInput(): HostTensor;
  /** CFG + Euler: latents <- latents + (sigmaNext - sigma) * guided(output). */
  advance(cfg: boolean, guidance: number, sigma: number, sigmaNext: number): Promise<void>;
  /** Views of the latents after and before the last advance (no copy). */
  latents(): { latent: Float32Array | Uint16Array; previous: Float32Array | Uint16Array };
  /** Writes the final latents back into input.latents. */
  finish(): void;
}

/**
 * The step graph (elementwise-graphs.ts) does diffusers' tensor ops natively: float32 exactly as
 * torch's float32 ops, float16 as its half op sequence. Measured faster than a fused JavaScript
 * pass for float32 too, and far faster than emulating half rounding in JavaScript.
 */
function graphStepper(input: DenoiseInput, inputDims: number[]): Stepper {
  const { latents, batch, dtype } = input;
  const steps = input.steps;
  const n = latents.length;
  const latentDims = [batch, ...input.latentDims];
  const alloc = (key: string, dims: number[]): HostTensor =>
    dtype === 'float16'
      ? { dtype, dims, data: input.pool.uint16(key, product(dims)) }
      : { dtype, dims, data: input.pool.float32(key, product(dims)) };
  // The latents are the first rows of the transformer input ([x; x] with CFG), so the graph reads
  // them there and writes only the next input.
  let modelInput = alloc('model-input', inputDims);
  const first = floatTensor(latents, latentDims, dtype).data as Float32Array;
  for (let off = 0; off < product(inputDims); off += n) (modelInput.data as Float32Array).set(first, off);
  let nextInput = alloc('next-input', inputDims);
  const output = alloc('model-output', inputDims);
  const sampleOf = (t: HostTensor): HostTensor => ({
    dtype,
    dims: latentDims,
    data: (t.data as Float32Array).subarray(0, n),
  });
  const guidanceTensor = new Float32Array(1);
  const dtTensor = new Float32Array(1);
  return {
    output,
    modelInput: () => modelInput,
    async advance(cfg, guidance, sigma, sigmaNext) {
      guidanceTensor[0] = guidance;
      dtTensor[0] = sigmaNext - sigma;
      await (cfg ? steps.guided : steps.plain).run(
        {
          model_output: output,
          sample: sampleOf(modelInput),
          guidance: { dtype: 'float32', dims: [], data: guidanceTensor },
          dt: { dtype: 'float32', dims: [], data: dtTensor },
        },
        { next_input: nextInput },
      );
      [modelInput, nextInput] = [nextInput, modelInput];
    },
    latents() {
      // After the swap modelInput holds the new latents and nextInput the ones the step read.
      const view = (t: HostTensor) => t.data.subarray(0, n) as Float32Array | Uint16Array;
      return { latent: view(modelInput), previous: view(nextInput) };
    },
    finish() {
      latents.set(tensorValues(sampleOf(modelInput)));
    },
  };
}
