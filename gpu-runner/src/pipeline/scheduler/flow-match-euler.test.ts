import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { eulerStep, flowMatchSchedule, trainingSigmaRange } from './flow-match-euler.js';

const reference = JSON.parse(
  readFileSync(new URL('../../../../test/reference/scheduler.json', import.meta.url), 'utf8'),
) as {
  init: { sigma_max: number; sigma_min: number };
  t2i_steps28_shift3: { timesteps: number[]; sigmas: number[] };
  t2i_steps50_shift3: { timesteps: number[]; sigmas: number[] };
  euler_step_example_steps28: {
    sample: number;
    model_output: number;
    sigma: number;
    sigma_next: number;
    prev_sample: number;
  };
};
const sd3 = { numTrainTimesteps: 1000, shift: 3 };

test('training sigma range equals diffusers', () => {
  assert.deepEqual(trainingSigmaRange(sd3), {
    sigmaMax: reference.init.sigma_max,
    sigmaMin: reference.init.sigma_min,
  });
});

for (const steps of [28, 50] as const) {
  test(`${steps}-step schedule equals diffusers exactly in float32`, () => {
    const ref = reference[`t2i_steps${steps}_shift3`];
    const schedule = flowMatchSchedule(sd3, steps);
    assert.deepEqual(Array.from(schedule.timesteps), ref.timesteps);
    assert.deepEqual(Array.from(schedule.sigmas), ref.sigmas);
    assert.equal(schedule.startIndex, 0);
  });
}

test('last sigma is the doubly shifted 1/112 and the first timestep 1000', () => {
  const s = flowMatchSchedule(sd3, 28);
  assert.equal(s.timesteps[0], 1000);
  assert.equal(s.sigmas[27], Math.fround(1 / 112));
  assert.equal(s.sigmas[28], 0);
});

test('img2img trims the start with diffusers truncation', () => {
  const full = flowMatchSchedule(sd3, 50);
  const s = flowMatchSchedule(sd3, 50, 0.6);
  // init = 30, t_start = 20: 30 steps run.
  assert.equal(s.startIndex, 20);
  assert.equal(s.timesteps.length, 30);
  assert.deepEqual(Array.from(s.sigmas), Array.from(full.sigmas.slice(20)));
  // 28 * 0.3 = 8.4 -> t_start = int(19.6) = 19, 9 steps run.
  const t = flowMatchSchedule(sd3, 28, 0.3);
  assert.equal(t.startIndex, 19);
  assert.equal(t.timesteps.length, 9);
  assert.equal(flowMatchSchedule(sd3, 10, 0).timesteps.length, 0);
  assert.equal(flowMatchSchedule(sd3, 10, 1).timesteps.length, 10);
});

test('a single step schedule starts at sigma_max', () => {
  const s = flowMatchSchedule(sd3, 1);
  assert.deepEqual(Array.from(s.sigmas), [1, 0]);
  assert.deepEqual(Array.from(s.timesteps), [1000]);
});

test('shift 1 gives the unshifted linear schedule', () => {
  const s = flowMatchSchedule({ numTrainTimesteps: 1000, shift: 1 }, 4);
  assert.deepEqual(Array.from(s.sigmas), [1, Math.fround(0.667), Math.fround(0.334), Math.fround(0.001), 0]);
});

test('bad steps and strength are refused with the field named', () => {
  assert.throws(() => flowMatchSchedule(sd3, 0), /steps/);
  assert.throws(() => flowMatchSchedule(sd3, 2.5), /steps/);
  assert.throws(() => flowMatchSchedule(sd3, 10, 1.5), /strength/);
  assert.throws(() => flowMatchSchedule(sd3, 10, -0.1), /strength/);
  assert.throws(() => flowMatchSchedule(sd3, 10, Number.NaN), /strength/);
});

test('Euler step equals the diffusers example', () => {
  const ex = reference.euler_step_example_steps28;
  const x = new Float32Array([ex.sample]);
  eulerStep(x, new Float32Array([ex.model_output]), ex.sigma, ex.sigma_next);
  assert.equal(x[0], ex.prev_sample);
});

test('img2img step count follows float64 truncation exactly as diffusers', () => {
  // 3 * 0.7 = 2.0999999999999996 in float64: t_start = int(0.9000000000000004) = 0, all 3 steps run.
  assert.equal(flowMatchSchedule(sd3, 3, 0.7).timesteps.length, 3);
  // 28 * 0.3 = 8.4: t_start = int(19.6) = 19, 9 steps run.
  assert.equal(flowMatchSchedule(sd3, 28, 0.3).timesteps.length, 9);
  assert.equal(flowMatchSchedule(sd3, 10, 0.7).timesteps.length, 7);
});
