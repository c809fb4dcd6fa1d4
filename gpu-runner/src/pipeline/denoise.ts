/**
 * The flow-matching Euler loop with classifier-free guidance (sd3-pipeline.md §2.3, §2.6).
 * Per step: one transformer call on [negative; positive] (or the positive batch alone when
 * guidance <= 1), then one fused host pass that applies CFG and the Euler update and writes the
 * next step's transformer input. Conditioning tensors are built once.
 */
import { PipelineError } from '../errors.js';
import type { HostTensor, OnnxModel } from '../runtime/onnx-backend.js';
import {
  float32ToHalfArray,
  HALF_VALUES,
  halfArrayToFloat32,
  roundFloat32ToHalf,
  toHalfBits,
} from '../tensor/float16.js';
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

export async function denoise(input: DenoiseInput, hooks: DenoiseHooks = {}): Promise<void> {
  const { transformer, latents, batch, schedule, guidanceScale } = input;
  const cfg = guidanceScale > 1;
  const modelBatch = cfg ? 2 * batch : batch;
  const [c, h, w] = input.latentDims;
  const n = batch * c * h * w;
  const hiddenType = inputType(transformer, 'hidden_states');
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
  // The transformer input ([latents; latents] with CFG) is rewritten by the fused step pass.
  const modelInput = new Float32Array(modelBatch * c * h * w);
  modelInput.set(latents, 0);
  if (cfg) modelInput.set(latents, n);
  const inputBits = hiddenType === 'float16' ? float32ToHalfArray(modelInput) : null;
  const total = schedule.timesteps.length;
  const timesteps = new Float32Array(modelBatch);
  const g = f(guidanceScale);
  const outType = transformer.outputs.find((o) => o.name === 'out_hidden_states')!.dtype as FloatDtype;
  const outDims = [modelBatch, c, h, w];
  const output: HostTensor = {
    dtype: outType,
    dims: outDims,
    data: outType === 'float16' ? new Uint16Array(modelInput.length) : new Float32Array(modelInput.length),
  };
  const fetches: Readonly<Record<string, HostTensor>> = { out_hidden_states: output };

  for (let i = 0; i < total; i++) {
    if (hooks.isCanceled?.()) throw new CanceledError(i, total);
    const t = schedule.timesteps[i]!;
    const out = await transformer.run(
      {
        ...staticFeeds,
        hidden_states: inputBits
          ? { dtype: 'float16', dims: [modelBatch, c, h, w], data: inputBits }
          : { dtype: 'float32', dims: [modelBatch, c, h, w], data: modelInput },
        timestep: floatTensor(timesteps.fill(t), [modelBatch], timestepType),
      },
      fetches,
    );
    const raw = out['out_hidden_states']!;
    const dt = f(schedule.sigmas[i + 1]! - schedule.sigmas[i]!);
    if (input.dtype === 'float16') {
      const v =
        raw.dtype === 'float16' ? (raw.data as Uint16Array) : float32ToHalfArray(raw.data as Float32Array);
      halfStep(latents, v, n, cfg, g, dt);
    } else {
      const v =
        raw.dtype === 'float32' ? (raw.data as Float32Array) : halfArrayToFloat32(raw.data as Uint16Array);
      floatStep(latents, v, n, cfg, g, dt);
    }
    writeModelInput(latents, n, cfg, modelInput, inputBits);
    hooks.onStep?.({ step: i + 1, totalSteps: total });
  }
}

/** float32 exactly as diffusers: noise_pred = u + g * (c - u); x + (sigma_next - sigma) * v. */
function floatStep(
  latents: Float32Array,
  v: Float32Array,
  n: number,
  cfg: boolean,
  g: number,
  dt: number,
): void {
  if (cfg) {
    const vc = v.subarray(n);
    for (let j = 0; j < n; j++) {
      const u = v[j]!;
      latents[j] = f(latents[j]! + f(dt * f(u + f(g * f(vc[j]! - u)))));
    }
  } else {
    for (let j = 0; j < n; j++) latents[j] = f(latents[j]! + f(dt * v[j]!));
  }
}

/**
 * float16 pipelines, reading the half output bits through a table. The guided prediction is
 * rounded to half once (diffusers rounds after each of its three half ops; the float32
 * combination is at least as precise and much cheaper here), then the Euler step as diffusers
 * does it: the half product dt * v (0-d float32 sigma tensors do not promote the half model
 * output) added to the float32 sample; the cast back to half happens in writeModelInput.
 */
function halfStep(
  latents: Float32Array,
  v: Uint16Array,
  n: number,
  cfg: boolean,
  g: number,
  dt: number,
): void {
  const T = HALF_VALUES;
  const vc = v.subarray(cfg ? n : 0);
  for (let j = 0; j < n; j++) {
    let vel = T[vc[j]!]!;
    if (cfg) {
      const u = T[v[j]!]!;
      vel = f(u + f(g * f(vel - u)));
      // Round to half inline (Veltkamp split, see roundFloat32ToHalf) in the normal half range.
      const a = Math.abs(vel);
      if (a >= 6.103515625e-5 && a < 65520) {
        const s = vel * 4398046511105;
        vel = s - (s - vel);
      } else vel = roundFloat32ToHalf(vel);
    }
    let p = f(dt * vel);
    const a = Math.abs(p);
    if (a >= 6.103515625e-5 && a < 65520) {
      const s = p * 4398046511105;
      p = s - (s - p);
    } else p = roundFloat32ToHalf(p);
    latents[j] = f(latents[j]! + p);
  }
}

/**
 * Copies the new latents into the next transformer input (twice with CFG). For half models it
 * also rounds the latents to half in place (the `.to(float16)` of diffusers' step) in one integer
 * pass over the float32 bit patterns, producing the input's half bits at the same time.
 */
function writeModelInput(
  latents: Float32Array,
  n: number,
  cfg: boolean,
  modelInput: Float32Array,
  inputBits: Uint16Array | null,
): void {
  if (!inputBits) {
    modelInput.set(latents, 0);
    if (cfg) modelInput.set(latents, n);
    return;
  }
  const bits = new Uint32Array(latents.buffer, latents.byteOffset, n);
  for (let j = 0; j < n; j++) {
    const b = bits[j]!;
    const exp = (b >>> 23) & 0xff;
    let h: number;
    if (exp > 112 && exp < 142) {
      // Normal half range: round the low 13 bits to nearest even; no overflow possible below 2^15.
      const r = (b + 0xfff + ((b >>> 13) & 1)) & 0xffffe000;
      bits[j] = r;
      h = ((r >>> 16) & 0x8000) | (((r & 0x7fffffff) >>> 13) - 0x1c000);
    } else {
      h = toHalfBits(latents[j]!);
      latents[j] = HALF_VALUES[h]!;
    }
    inputBits[j] = h;
    if (cfg) inputBits[j + n] = h;
  }
}
