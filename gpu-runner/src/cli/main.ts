/**
 * `sd3`: generate images from an SD3 ONNX folder and the diagnostics that show parity with
 * diffusers. Exit codes: 0 success, 2 bad input (flags, model folder, parameters, provider),
 * 1 anything else, 130 interrupted.
 */
import { isPipelineError } from '../errors.js';
import { type CliIo, type Command, UsageError } from './cli-io.js';
import { generateCommand } from './commands/generate.js';
import { modelsCommand } from './commands/models.js';
import { noiseCommand } from './commands/noise.js';
import { schedulerCommand } from './commands/scheduler.js';
import { tinyModelCommand } from './commands/tiny-model.js';
import { tokenizeCommand } from './commands/tokenize.js';

export const COMMANDS: readonly Command[] = [
  generateCommand,
  tinyModelCommand,
  schedulerCommand,
  noiseCommand,
  tokenizeCommand,
  modelsCommand,
];

function topUsage(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    'usage: sd3 <command> [flags]',
    '',
    'commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'Run `sd3 <command> --help` for its flags.',
  ].join('\n');
}

export async function main(argv: string[], io?: CliIo): Promise<number> {
  const controller = new AbortController();
  const onSigint = () => controller.abort();
  const streams: CliIo = io ?? { stdout: process.stdout, stderr: process.stderr, signal: controller.signal };
  if (!io) process.once('SIGINT', onSigint);
  const [name, ...rest] = argv;
  try {
    if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
      streams.stdout.write(`${topUsage()}\n`);
      return name === undefined ? 2 : 0;
    }
    const command = COMMANDS.find((c) => c.name === name);
    if (!command) throw new UsageError(`unknown command '${name}'\n\n${topUsage()}`);
    if (rest.includes('--help') || rest.includes('-h')) {
      streams.stdout.write(`${command.usage}\n`);
      return 0;
    }
    await command.run(rest, streams);
    return 0;
  } catch (err) {
    if (err instanceof UsageError) {
      streams.stderr.write(`sd3 ${name ?? ''}: ${err.message}\n`);
      return 2;
    }
    if (isPipelineError(err)) {
      streams.stderr.write(`sd3 ${name}: ${err.message}\n`);
      if (err.code === 'canceled') return 130;
      return err.code === 'internal' ? 1 : 2;
    }
    streams.stderr.write(
      `sd3 ${name}: unexpected error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    return 1;
  } finally {
    if (!io) process.off('SIGINT', onSigint);
  }
}
