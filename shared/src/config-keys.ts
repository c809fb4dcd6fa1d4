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
  /** Per-key request counters and running-job slots (pay-per-use issue). */
  RATE_LIMITS_TABLE: 'SD3_RATE_LIMITS_TABLE',
  /** The usage ledger: one item per settled job (pay-per-use issue). */
  USAGE_TABLE: 'SD3_USAGE_TABLE',
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
    /**
     * Sparse index of the jobs the reconciler still watches, per model: `openModel` (the model id)
     * is set at create and removed only by the reconciler, once the job is terminal, settled and its
     * terminal event is in the delivery log (edge/src/reconciler). Projects the few attributes a
     * sweep decides on, none of which a progress write touches.
     */
    openIndex: 'openByModel',
    openKey: 'openModel',
    openSort: 'createdAt',
    openProjection: ['status', 'enqueuedAt', 'completedAt', 'settlement'],
  },
  keys: { partitionKey: 'keyId' },
  tenants: { partitionKey: 'tenantId' },
  idempotency: { partitionKey: 'scope' },
  /** Item keys are built by `rpmWindowItemKey` / `jobSlotsItemKey` (contracts/key-limits.ts). */
  rateLimits: { partitionKey: 'pk' },
  /** Usage ledger: partition tenantId, sort `sk` = `<completedAt, 13 digits>#<jobId>` (usageSortKey). */
  usage: { partitionKey: 'tenantId', sortKey: 'sk' },
  /** TTL attribute (epoch seconds) on jobs, idempotency records and rate-limit windows. */
  ttlAttribute: 'expiresAt',
} as const;

/** Message attributes set on every jobs-queue message. */
export const MESSAGE_ATTRIBUTES = { jobId: 'jobId', tenantId: 'tenantId', model: 'model' } as const;

/** Jobs queue redrive: a message that fails this many receives goes to the DLQ. */
export const MAX_RECEIVES = 3;

/** Edge-only settings (added by the API issue; the ENV names above keep their meaning). */
export const EDGE_ENV = {
  /** JSON array of the ModelInfo objects this deployment serves (GET /v1/models). */
  MODELS: 'SD3_MODELS',
  /** Model id used when a request names none; the first model flagged `default`, else the first. */
  DEFAULT_MODEL: 'SD3_DEFAULT_MODEL',
  /** How long the edge caches API key records in memory (ms). */
  KEY_CACHE_TTL_MS: 'SD3_KEY_CACHE_TTL_MS',
  /** Lifetime of a signed job envelope (seconds). */
  ENVELOPE_MAX_AGE_SECONDS: 'SD3_ENVELOPE_MAX_AGE_SECONDS',
  /** Limits of keys that set none themselves (KeyRecord.requestsPerMinute / concurrentJobs). */
  DEFAULT_REQUESTS_PER_MINUTE: 'SD3_DEFAULT_REQUESTS_PER_MINUTE',
  DEFAULT_CONCURRENT_JOBS: 'SD3_DEFAULT_CONCURRENT_JOBS',
} as const;

/**
 * Tunables of the GPU runner service (all optional; defaults in gpu-runner's service config). Named
 * here so the CDK task definition and the local stack set the same variables the runner reads.
 */
export const RUNNER_ENV = {
  RUNNER_ID: 'SD3_RUNNER_ID',
  /** 'false' loads the model without its T5 encoder. */
  T5: 'SD3_RUNNER_T5',
  WAIT_TIME_SECONDS: 'SD3_RUNNER_WAIT_TIME_SECONDS',
  VISIBILITY_TIMEOUT_SECONDS: 'SD3_RUNNER_VISIBILITY_TIMEOUT_SECONDS',
  HEARTBEAT_INTERVAL_SECONDS: 'SD3_RUNNER_HEARTBEAT_INTERVAL_SECONDS',
  PROGRESS_INTERVAL_MS: 'SD3_RUNNER_PROGRESS_INTERVAL_MS',
  GRACE_SECONDS: 'SD3_RUNNER_GRACE_SECONDS',
  HEALTH_PORT: 'SD3_RUNNER_HEALTH_PORT',
  HEALTH_HOST: 'SD3_RUNNER_HEALTH_HOST',
  MAX_RECEIVES: 'SD3_RUNNER_MAX_RECEIVES',
  RETRY_BACKOFF_SECONDS: 'SD3_RUNNER_RETRY_BACKOFF_SECONDS',
  DLQ_SWEEP_INTERVAL_SECONDS: 'SD3_RUNNER_DLQ_SWEEP_INTERVAL_SECONDS',
  DLQ_HIDE_SECONDS: 'SD3_RUNNER_DLQ_HIDE_SECONDS',
  /** 'manifest' (default): hash the model folder against its manifest.json at start; 'off'. */
  VERIFY_MODEL: 'SD3_RUNNER_VERIFY_MODEL',
  /** 'true' refuses to start when the model folder has no manifest.json. */
  REQUIRE_MANIFEST: 'SD3_RUNNER_REQUIRE_MANIFEST',
  LOG_LEVEL: 'SD3_LOG_LEVEL',
} as const;

/** Optional message attribute: the edge request id that created the job, for the runner's logs. */
export const REQUEST_ID_MESSAGE_ATTRIBUTE = 'requestId';

/** Webhook notifier settings (optional; defaults in edge/src/notifier). */
export const NOTIFIER_ENV = {
  /** JSON array of retry delays in ms (attempts = length + 1); default about 27 h of backoff. */
  RETRY_SCHEDULE_MS: 'SD3_WEBHOOK_RETRY_SCHEDULE_MS',
  /** Per-attempt timeout in ms (default 10000). */
  TIMEOUT_MS: 'SD3_WEBHOOK_TIMEOUT_MS',
  /** 'true' allows http://127.0.0.1 targets: the local stack only, never in AWS. */
  ALLOW_LOCAL_HTTP: 'SD3_WEBHOOK_ALLOW_LOCAL_HTTP',
} as const;

/** Crash-recovery reconciler settings (optional; defaults in edge/src/reconciler/config.ts). */
export const RECONCILER_ENV = {
  /** A job, reservation or event untouched this long is treated as lost (ms). */
  STALE_AFTER_MS: 'SD3_RECONCILER_STALE_AFTER_MS',
  /** Re-enqueues of a lost job's message before it is failed with `message_lost`. */
  MAX_RESENDS: 'SD3_RECONCILER_MAX_RESENDS',
} as const;
