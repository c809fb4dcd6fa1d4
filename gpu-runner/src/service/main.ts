/**
 * The `sd3-runner` process: configuration from the environment, the runner, and signal handling.
 * SIGTERM or SIGINT stops it gracefully (exit 0); a second signal exits at once (exit 130).
 */
import { ConfigError, runnerConfigFromEnv } from './config.js';
import { createLogger, errorFields } from './logger.js';
import { startRunner } from './runner.js';

export async function main(env: Record<string, string | undefined> = process.env): Promise<number> {
  let config: ReturnType<typeof runnerConfigFromEnv>;
  try {
    config = runnerConfigFromEnv(env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`sd3-runner: ${err.message}\n`);
    return 2;
  }
  const log = createLogger({ level: config.logLevel, fields: { runner_id: config.runnerId } });
  let runner: Awaited<ReturnType<typeof startRunner>>;
  try {
    runner = await startRunner(config, { logger: log });
  } catch (err) {
    log.error('runner failed to start', errorFields(err));
    return 1;
  }
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals++;
    if (signals > 1) {
      log.warn('second signal, exiting now', { signal });
      process.exit(130);
    }
    void runner.stop(signal);
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  await runner.done;
  process.off('SIGTERM', onSignal);
  process.off('SIGINT', onSignal);
  // Stopped on its own because the pipeline died: exit non-zero so the task is replaced.
  return runner.failure() ? 1 : 0;
}
