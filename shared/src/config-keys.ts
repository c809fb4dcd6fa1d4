/**
 * Names that must not drift between the edge, the runner, the local stack and the CDK app:
 * environment variables, table and index names, key attributes, queue message attributes.
 * The CDK app may import this file (and only this one).
 */

export const ENV = {
  /** DynamoDB tables. */
  JOBS_TABLE: 'SD3_JOBS_TABLE',
  KEYS_TABLE: 'SD3_KEYS_TABLE',
  TENANTS_TABLE: 'SD3_TENANTS_TABLE',
  IDEMPOTENCY_TABLE: 'SD3_IDEMPOTENCY_TABLE',
  /** S3 bucket for inputs and outputs (prefixes inputs/ and outputs/). */
  MEDIA_BUCKET: 'SD3_MEDIA_BUCKET',
  /** JSON map model id -> jobs queue URL. */
  JOB_QUEUES: 'SD3_JOB_QUEUES',
  /** The queue this runner consumes, and its dead-letter queue. */
  JOB_QUEUE_URL: 'SD3_JOB_QUEUE_URL',
  DLQ_URL: 'SD3_DLQ_URL',
  EVENTS_QUEUE_URL: 'SD3_EVENTS_QUEUE_URL',
  /** Envelope signing: JSON map key id -> base64 secret; the first key id in SIGNING_KEY_ID signs. */
  SIGNING_KEYS: 'SD3_SIGNING_KEYS',
  SIGNING_KEY_ID: 'SD3_SIGNING_KEY_ID',
  /** Model served by a runner and where its folder is. */
  MODEL_ID: 'SD3_MODEL_ID',
  MODEL_DIR: 'SD3_MODEL_DIR',
  PROVIDER: 'SD3_PROVIDER',
  /** Endpoint overrides for the local stack (emulators); unset in AWS. */
  AWS_ENDPOINT_SQS: 'SD3_SQS_ENDPOINT',
  AWS_ENDPOINT_S3: 'SD3_S3_ENDPOINT',
  AWS_ENDPOINT_DYNAMODB: 'SD3_DYNAMODB_ENDPOINT',
  /** Public base URL of the API (used in links). */
  PUBLIC_URL: 'SD3_PUBLIC_URL',
  DEV_API_KEY: 'SD3_DEV_API_KEY',
  PORT: 'PORT',
} as const;

/** Key schema of every table (attribute names). */
export const TABLES = {
  jobs: {
    partitionKey: 'jobId',
    /** List a tenant's jobs newest first: partition tenantId, sort createdAt (number, epoch ms). */
    byTenantIndex: 'byTenant',
    byTenantKey: 'tenantId',
    byTenantSort: 'createdAt',
    /**
     * Sparse index of queued jobs per model, for honest queue positions: `queuedModel` (string,
     * the model id) is set while the job is queued and removed by whoever moves it out of queued.
     */
    queuedIndex: 'queuedByModel',
    queuedKey: 'queuedModel',
    queuedSort: 'createdAt',
  },
  keys: { partitionKey: 'keyId' },
  tenants: { partitionKey: 'tenantId' },
  idempotency: { partitionKey: 'scope' },
  /** TTL attribute (epoch seconds) on jobs and idempotency records. */
  ttlAttribute: 'expiresAt',
} as const;

/** Message attributes set on every jobs-queue message. */
export const MESSAGE_ATTRIBUTES = { jobId: 'jobId', tenantId: 'tenantId', model: 'model' } as const;

/** Jobs queue redrive: a message that fails this many receives goes to the DLQ. */
export const MAX_RECEIVES = 3;
