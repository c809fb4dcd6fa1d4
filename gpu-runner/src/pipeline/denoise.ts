/**
 * The flow-matching Euler loop with classifier-free guidance (sd3-pipeline.md §2.3, §2.6).
 * Per step: one transformer call on [negative; positive] (or the positive batch alone when
 * guidance <= 1), then one fused host pass that applies CFG and the Euler update and writes the
 * next step's transformer input. Conditioning tensors are built once.
 */
import { PipelineError } from '../errors.js';
import type { HostTensor, OnnxModel } from '../runtime/onnx-backend.js';
import { fromHalfBits, toHalfBits } from '../tensor/float16.js';
import type { FloatDtype } from '../tensor/host-tensor.js';
import { floatTensor } from '../tensor/host-tensor.js';
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

/** Rounds a float32 value to the nearest half, as a half tensor op's output. */
function half(x: number): number {
  return fromHalfBits(toHalfBits(x));
}

export async function denoise(input: DenoiseInput, hooks: DenoiseHooks = {}): Promise<void> {
  const { transformer, latents, batch, schedule, guidanceScale } = input;
  const cfg = guidanceScale > 1;
  const modelBatch = cfg ? 2 * batch : batch;
  const [c, h, w] = input.latentDims;
  const perBatch = c * h * w;
  const n = batch * perBatch;
  const hiddenType = inputType(transformer, 'hidden_states');
  const timestepType = inputType(transformer, 'timestep');
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
  const modelInput = new Float32Array(modelBatch * perBatch);
  const g = f(guidanceScale);
  const isHalf = input.dtype === 'float16';
  const total = schedule.timesteps.length;

  for (let i = 0; i < total; i++) {
    if (hooks.isCanceled?.()) throw new CanceledError(i, total);
    modelInput.set(latents, 0);
    if (cfg) modelInput.set(latents, n);
    const t = schedule.timesteps[i]!;
    const out = await transformer.run(
      {
        ...staticFeeds,
        hidden_states: floatTensor(modelInput, [modelBatch, c, h, w], hiddenType),
        timestep: floatTensor(new Float32Array(modelBatch).fill(t), [modelBatch], timestepType),
      },
      ['out_hidden_states'],
    );
    const raw = out['out_hidden_states']!;
    const v = raw.dtype === 'float16' ? halfValues(raw.data as Uint16Array) : (raw.data as Float32Array);
    const sigma = schedule.sigmas[i]!;
    const sigmaNext = schedule.sigmas[i + 1]!;
    const dt = f(sigmaNext - sigma);
    if (isHalf) {
      for (let j = 0; j < n; j++) {
        let vel: number;
        if (cfg) {
          const u = v[j]!;
          vel = half(u + half(g * half(v[j + n]! - u)));
        } else vel = v[j]!;
        latents[j] = half(f(latents[j]! + half(dt * vel)));
      }
    } else {
      for (let j = 0; j < n; j++) {
        let vel: number;
        if (cfg) {
          const u = v[j]!;
          vel = f(u + f(g * f(v[j + n]! - u)));
        } else vel = v[j]!;
        latents[j] = f(latents[j]! + f(dt * vel));
      }
    }
    hooks.onStep?.({ step: i + 1, totalSteps: total });
  }
}

function halfValues(bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = fromHalfBits(bits[i]!);
  return out;
}
