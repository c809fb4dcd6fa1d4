/**
 * The webhook notifier as a Lambda behind an SQS event source on the events queue (deps from the
 * function's environment; see notifier/lambda-handler.ts for the batch handling).
 */
import { createJsonLogger } from '../logger.js';
import { createAwsNotifier } from '../notifier/aws.js';
import { createNotifierHandler } from '../notifier/lambda-handler.js';

export const handler = createNotifierHandler(
  createAwsNotifier(process.env, { logger: createJsonLogger() }).deps,
);
