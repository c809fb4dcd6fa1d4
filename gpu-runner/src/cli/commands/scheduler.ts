import { flowMatchSchedule } from '../../pipeline/scheduler/flow-match-euler.js';
import { type Command, parseFlags, parseNumber, printJson, requireFlag } from '../cli-io.js';

export const schedulerCommand: Command = {
  name: 'scheduler',
  summary: 'print the flow-match Euler timesteps and sigmas diffusers would use',
  usage: `sd3 scheduler --steps N [--shift S] [--strength X] [--num-train-timesteps T]

  --steps N                 denoising steps (num_inference_steps)
  --shift S                 scheduler shift (default 3.0, SD3's)
  --strength X              image-to-image strength in [0, 1]: print only the steps that run
  --num-train-timesteps T   training timesteps (default 1000)

Prints {"timesteps":[...],"sigmas":[...]}; sigmas end with the terminal 0.`,
  async run(args, io) {
    const { values } = parseFlags(args, {
      steps: { type: 'string' },
      shift: { type: 'string' },
      strength: { type: 'string' },
      'num-train-timesteps': { type: 'string' },
    });
    const steps = parseNumber(requireFlag(values.steps, 'steps'), 'steps', { integer: true })!;
    const shift = parseNumber(values.shift, 'shift') ?? 3;
    const strength = parseNumber(values.strength, 'strength') ?? 1;
    const numTrainTimesteps =
      parseNumber(values['num-train-timesteps'], 'num-train-timesteps', { integer: true }) ?? 1000;
    const s = flowMatchSchedule({ numTrainTimesteps, shift }, steps, strength);
    printJson(io, { timesteps: Array.from(s.timesteps), sigmas: Array.from(s.sigmas) });
  },
};
