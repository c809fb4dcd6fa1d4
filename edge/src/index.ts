/** The edge's public surface: the app, its deps, the AWS implementations and the runtime adapters. */
export { type AwsDeps, createAwsDeps, type Env } from './adapters/aws/create-aws-deps.js';
export { DynamoIdempotencyStore } from './adapters/aws/dynamo-idempotency-store.js';
export { DynamoJobStore } from './adapters/aws/dynamo-job-store.js';
export { DynamoKeyStore } from './adapters/aws/dynamo-key-store.js';
export { S3ObjectStore } from './adapters/aws/s3-object-store.js';
export { SqsJobQueue } from './adapters/aws/sqs-job-queue.js';
export { type EdgeServer, startEdgeServer } from './adapters/node-server.js';
export { createApp } from './app.js';
export { type Clock, DEFAULT_TUNING, type EdgeDeps, type EdgeTuning } from './deps.js';
export { ApiError } from './errors/api-error.js';
export { createJsonLogger, type Logger, type LogLevel, silentLogger } from './logger.js';
export { type AwsNotifier, createAwsNotifier, type NotifierLoop, startNotifierLoop } from './notifier/aws.js';
export { type DeliveryStore, DynamoDeliveryStore } from './notifier/delivery-store.js';
export { DEFAULT_RETRY_SCHEDULE_MS, handleEventMessage, type NotifierDeps } from './notifier/notifier.js';
export { buildOpenApiDocument } from './openapi/document.js';
export type * from './ports/index.js';
export { type AwsReconciler, createAwsReconciler } from './reconciler/aws.js';
export {
  DEFAULT_RECONCILER_CONFIG,
  type ReconcilerConfig,
  resolveReconcilerConfig,
} from './reconciler/config.js';
export type { ReconcilerDeps } from './reconciler/context.js';
export { type ReconcilerLoop, startReconcilerLoop } from './reconciler/loop.js';
export { createReconciler, type Reconciler } from './reconciler/reconciler.js';
export type { ReconcileReport } from './reconciler/report.js';
export { isJobId, newJobId } from './services/job-id.js';
