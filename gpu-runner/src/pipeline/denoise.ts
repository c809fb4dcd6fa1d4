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
import type { Schedule } from './scheduler/flow-match-euler.js';

const f = Math.fround;

export interface StepProgress {
  /** Steps finished so far (1-based after the first step). */
  step: number;
  totalSteps: number;
}

export interface DenoiseHooks {
  onStep?: (progress: StepProgress) => void;
  /** Checked before every step; true stops the loop with a 'canceled' PipelineError. */
  isCanceled?: () => boolean;
}

export interface DenoiseInput {
  transformer: OnnxModel;
  /** guidedEulerStepGraph(float16, cfg) for half models (unused for float32 ones). */
  steps: { guided: OnnxModel; plain: OnnxModel };
  /** Latents [batch, channels, h, w] in the pipeline dtype; updated in place. */
  latents: Float32Array;
  batch: number;
  latentDims: readonly [number, number, number];
  /** Conditioning for the transformer batch: [negative rows; positive rows] with CFG. */
  embeds: Float32Array;
  pooled: Float32Array;
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
  const dtype = input.dtype;
  const timestepType = inputType(transformer, 'timestep');
  // Built once: the conditioning does not change between steps.
  const staticFeeds: Record<string, HostTensor> = {
    encoder_hidden_states: floatTensor(
      input.embeds,
      [modelBatch, input.seqLen, input.jointDim],
      inputType(transformer, 'encoder_hidden_states'),
    ),
    pooled_projections: floatTensor(
      input.pooled,
      [modelBatch, input.pooledDim],
      inputType(transformer, 'pooled_projections'),
    ),
  };
  const step = dtype === 'float16' ? halfStepper(input, inputDims) : floatStepper(input, inputDims);
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
  /** Writes the final latents back into input.latents. */
  finish(): void;
}

/**
 * float32: one fused JavaScript pass, exactly diffusers' float32 ops
 * (noise_pred = u + g * (c - u); prev = x + (sigma_next - sigma) * noise_pred). On the CPU this is
 * cheaper than running the same ops as an onnxruntime graph.
 */
function floatStepper(input: DenoiseInput, inputDims: number[]): Stepper {
  const n = input.latents.length;
  const modelInput = input.pool.float32('model-input', product(inputDims));
  for (let off = 0; off < modelInput.length; off += n) modelInput.set(input.latents, off);
  // The latents live in the first rows of the transformer input: one less copy per step.
  const x = modelInput.subarray(0, n);
  const v = input.pool.float32('model-output', modelInput.length);
  const inputTensor: HostTensor = { dtype: 'float32', dims: inputDims, data: modelInput };
  return {
    output: { dtype: 'float32', dims: inputDims, data: v },
    modelInput: () => inputTensor,
    async advance(cfg, guidance, sigma, sigmaNext) {
      const g = f(guidance);
      const dt = f(sigmaNext - sigma);
      if (cfg) {
        const vc = v.subarray(n);
        const copy = modelInput.subarray(n);
        for (let j = 0; j < n; j++) {
          const u = v[j]!;
          const next = f(x[j]! + f(dt * f(u + f(g * f(vc[j]! - u)))));
          x[j] = next;
          copy[j] = next;
        }
      } else {
        for (let j = 0; j < n; j++) x[j] = f(x[j]! + f(dt * v[j]!));
      }
    },
    finish() {
      input.latents.set(x);
    },
  };
}

/**
 * float16: the step graph (elementwise-graphs.ts) follows diffusers' half-precision op sequence
 * exactly, which native Casts do far faster than JavaScript can emulate half rounding.
 */
function halfStepper(input: DenoiseInput, inputDims: number[]): Stepper {
  const { latents, batch } = input;
  const latentDims = [batch, ...input.latentDims];
  const half = (key: string, dims: number[]): HostTensor => ({
    dtype: 'float16',
    dims,
    data: input.pool.uint16(key, product(dims)),
  });
  let sample = floatTensor(latents, latentDims, 'float16');
  let prev = half('prev', latentDims);
  let modelInput = half('model-input', inputDims);
  for (let off = 0; off < product(inputDims); off += latents.length) {
    (modelInput.data as Uint16Array).set(sample.data as Uint16Array, off);
  }
  let nextInput = half('next-input', inputDims);
  const output = half('model-output', inputDims);
  const guidanceTensor = new Float32Array(1);
  const dtTensor = new Float32Array(1);
  return {
    output,
    modelInput: () => modelInput,
    async advance(cfg, guidance, sigma, sigmaNext) {
      guidanceTensor[0] = guidance;
      dtTensor[0] = sigmaNext - sigma;
      await (cfg ? input.steps.guided : input.steps.plain).run(
        {
          model_output: output,
          sample,
          guidance: { dtype: 'float32', dims: [], data: guidanceTensor },
          dt: { dtype: 'float32', dims: [], data: dtTensor },
        },
        { prev_sample: prev, next_input: nextInput },
      );
      [sample, prev] = [prev, sample];
      [modelInput, nextInput] = [nextInput, modelInput];
    },
    finish() {
      latents.set(tensorValues(sample));
    },
  };
}
