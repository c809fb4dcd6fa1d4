/**
 * diffusers' FlowMatchEulerDiscreteScheduler (static shifting, deterministic Euler), reproduced
 * bit for bit: schedule construction in float64 then float32 as diffusers does, and the step in
 * float32 tensor arithmetic. See sd3-pipeline.md §3.
 */
import { PipelineError } from '../../errors.js';

const f = Math.fround;

export interface FlowMatchSchedulerConfig {
  numTrainTimesteps: number;
  shift: number;
}

export interface Schedule {
  /** Timesteps fed to the transformer (sigma * 1000 in float32), one per denoising step that runs. */
  timesteps: Float32Array;
  /** Sigmas of the steps that run plus the terminal 0 (length = timesteps.length + 1). */
  sigmas: Float32Array;
  /** Index of the first step that runs within the full schedule (img2img trims the start). */
  startIndex: number;
  /** Steps of the full schedule (the `num_inference_steps` argument). */
  totalSteps: number;
}

function shiftSigma(shift: number, sigma: number): number {
  return (shift * sigma) / (1 + (shift - 1) * sigma);
}

/** sigma_max and sigma_min of the training schedule, computed in float32 as the constructor does. */
export function trainingSigmaRange(config: FlowMatchSchedulerConfig): { sigmaMax: number; sigmaMin: number } {
  const n = config.numTrainTimesteps;
  const s = f(config.shift);
  // Training timesteps run N..1; the first gives sigma_max, the last sigma_min (float32 tensor ops).
  const shifted = (t: number) => {
    const sigma = f(f(t) / n);
    return f(f(s * sigma) / f(1 + f(f(s - 1) * sigma)));
  };
  return { sigmaMax: shifted(n), sigmaMin: shifted(1) };
}

export function validateSchedulerConfig(config: FlowMatchSchedulerConfig): void {
  if (!Number.isInteger(config.numTrainTimesteps) || config.numTrainTimesteps < 2) {
    throw new PipelineError('model_invalid', `scheduler num_train_timesteps must be an integer >= 2`);
  }
  if (!(config.shift > 0) || !Number.isFinite(config.shift)) {
    throw new PipelineError('model_invalid', `scheduler shift must be a positive number`);
  }
}

/**
 * `set_timesteps(steps)` followed, for image-to-image, by `get_timesteps(steps, strength)`.
 * strength = 1 (the default) keeps every step.
 */
export function flowMatchSchedule(config: FlowMatchSchedulerConfig, steps: number, strength = 1): Schedule {
  validateSchedulerConfig(config);
  if (!Number.isInteger(steps) || steps < 1) {
    throw new PipelineError('input_invalid', `steps must be an integer >= 1, got ${steps}`);
  }
  if (!(strength >= 0 && strength <= 1)) {
    throw new PipelineError('input_invalid', `strength must be within [0, 1], got ${strength}`);
  }
  const n = config.numTrainTimesteps;
  const { sigmaMax, sigmaMin } = trainingSigmaRange(config);
  const start = sigmaMax * n;
  const stop = sigmaMin * n;
  const full = new Float32Array(steps + 1);
  const stepSize = steps > 1 ? (stop - start) / (steps - 1) : 0;
  for (let i = 0; i < steps; i++) {
    // numpy.linspace: i * step + start, with the last element forced to stop.
    const t = i === steps - 1 && steps > 1 ? stop : i * stepSize + start;
    full[i] = f(shiftSigma(config.shift, t / n));
  }
  full[steps] = 0;
  // get_timesteps: init = min(steps * strength, steps); t_start = int(max(steps - init, 0)).
  const init = Math.min(steps * strength, steps);
  const startIndex = Math.trunc(Math.max(steps - init, 0));
  const sigmas = full.slice(startIndex);
  const timesteps = new Float32Array(sigmas.length - 1);
  for (let i = 0; i < timesteps.length; i++) timesteps[i] = f(sigmas[i]! * n);
  return { timesteps, sigmas, startIndex, totalSteps: steps };
}

/**
 * One Euler step in place: x <- x + (sigma_next - sigma) * v, in float32 as diffusers does.
 * For float16 pipelines the product is a half tensor (0-d sigma tensors do not promote the 4-d
 * half model output) before it is added to the float32 sample, and the result is cast to half.
 */
export function eulerStep(
  sample: Float32Array,
  modelOutput: Float32Array,
  sigma: number,
  sigmaNext: number,
  roundToModelDtype?: (x: number) => number,
): void {
  const dt = f(sigmaNext - sigma);
  if (roundToModelDtype) {
    for (let i = 0; i < sample.length; i++) {
      sample[i] = roundToModelDtype(f(sample[i]! + roundToModelDtype(f(dt * modelOutput[i]!))));
    }
  } else {
    for (let i = 0; i < sample.length; i++) sample[i] = f(sample[i]! + f(dt * modelOutput[i]!));
  }
}
