/** The runner service's public surface, for the local stack (`npm start`) and the process entry. */
export { type AwsClients, createAwsClients } from './aws-clients.js';
export {
  CONFIG_ENV_NAMES,
  ConfigError,
  parseRunnerConfig,
  type RunnerConfig,
  type RunnerConfigInput,
  runnerConfigFromEnv,
} from './config.js';
export { DlqSweeper } from './dlq-sweeper.js';
export { JobHandler, type JobPipeline } from './job-handler.js';
export { type ClaimResult, DynamoJobStore, type JobStore, type LeaseState } from './job-store.js';
export { createLogger, LOG_LEVELS, type Logger, type LogLevel } from './logger.js';
export { type MessageOutcome, QueueConsumer, type RunnerEventMap, RunnerEvents } from './queue-consumer.js';
export {
  type RunnerDeps,
  type RunnerHandle,
  type RunnerHealth,
  type RunnerState,
  startRunner,
} from './runner.js';
