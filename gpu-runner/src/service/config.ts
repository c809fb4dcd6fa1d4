/**
 * The runner service's configuration: names from @sd3/shared (ENV, RUNNER_ENV), validated with zod,
 * with defaults for every tunable. Errors name the variable, the expected range and what was found.
 *
 * Timing model (see job-handler.ts): a received message is hidden for `visibilityTimeoutSeconds`;
 * every `heartbeatIntervalSeconds` the runner extends it again and renews the job's lease in
 * DynamoDB. The lease is `visibility − heartbeat` long, so it always ends no later than the message
 * reappears: when a runner dies, the redelivered message finds the lease expired and can be claimed
 * at once instead of burning a receive. That requires heartbeat < visibility / 2, which is checked.
 */
import { hostname } from 'node:os';
import { ENV, MAX_RECEIVES, parseSigningKeys, RUNNER_ENV, type SigningKeys } from '@sd3/shared';
import { z } from 'zod';
import { EXECUTION_PROVIDERS, type ExecutionProvider } from '../runtime/onnx-backend.js';
import { LOG_LEVELS, type LogLevel } from './logger.js';
import { MODEL_VERIFY_MODES, type ModelVerifyMode } from './model-verify.js';

export interface RunnerConfig {
  queueUrl: string;
  dlqUrl: string;
  /** The events queue for webhooks; unset: no events are sent. */
  eventsQueueUrl: string | undefined;
  /** Tenants table: settlement refunds go back to credit balances (optional). */
  tenantsTable: string | undefined;
  /** Usage ledger (optional). */
  usageTable: string | undefined;
  jobsTable: string;
  mediaBucket: string;
  signingKeys: SigningKeys;
  modelId: string;
  modelDir: string;
  provider: ExecutionProvider;
  t5: boolean;
  /** Unset: the SDK's own resolution (AWS_REGION in ECS). */
  region: string | undefined;
  /** Emulator endpoints for the local stack; unset in AWS. */
  endpoints: { sqs?: string; s3?: string; dynamodb?: string };
  runnerId: string;
  /** SQS long-poll wait, 1-20 s. */
  waitTimeSeconds: number;
  visibilityTimeoutSeconds: number;
  heartbeatIntervalSeconds: number;
  /** Job lease in DynamoDB: (visibility − heartbeat) seconds, in ms. */
  leaseMs: number;
  /** Least time between two progress writes (and progress events). */
  progressIntervalMs: number;
  /** After SIGTERM, how long the job in hand may run on before it is aborted and released. */
  graceSeconds: number;
  /** 0 picks a free port. */
  healthPort: number;
  /** Interface of the health endpoint (all interfaces by default, for the orchestrator's checks). */
  healthHost: string;
  /** Receives before SQS moves a message to the DLQ (the queue's maxReceiveCount). */
  maxReceives: number;
  /** First redelivery delay after a retryable failure; doubles per receive, at most 300 s. */
  retryBackoffSeconds: number;
  dlqSweepIntervalSeconds: number;
  /** How long a swept DLQ message stays hidden (the SQS maximum is 12 h). */
  dlqHideSeconds: number;
  /** 'manifest': at start, hash every model file against the folder's manifest.json (when present). */
  verifyModel: ModelVerifyMode;
  /** Refuse to start when the model folder has no manifest.json (production: pulled folders have one). */
  requireManifest: boolean;
  logLevel: LogLevel;
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(readonly issues: string[]) {
    super(`invalid runner configuration:\n  ${issues.join('\n  ')}`);
  }
}

type Raw = string | number | boolean | undefined;

/** The fields before validation: strings from the environment or values from code. */
export interface RunnerConfigInput {
  queueUrl?: Raw;
  dlqUrl?: Raw;
  eventsQueueUrl?: Raw;
  tenantsTable?: Raw;
  usageTable?: Raw;
  jobsTable?: Raw;
  mediaBucket?: Raw;
  signingKeys?: Raw;
  modelId?: Raw;
  modelDir?: Raw;
  provider?: Raw;
  t5?: Raw;
  region?: Raw;
  sqsEndpoint?: Raw;
  s3Endpoint?: Raw;
  dynamodbEndpoint?: Raw;
  runnerId?: Raw;
  waitTimeSeconds?: Raw;
  visibilityTimeoutSeconds?: Raw;
  heartbeatIntervalSeconds?: Raw;
  progressIntervalMs?: Raw;
  graceSeconds?: Raw;
  healthPort?: Raw;
  healthHost?: Raw;
  maxReceives?: Raw;
  retryBackoffSeconds?: Raw;
  dlqSweepIntervalSeconds?: Raw;
  dlqHideSeconds?: Raw;
  verifyModel?: Raw;
  requireManifest?: Raw;
  logLevel?: Raw;
}

/** Environment variable of each field, used to read it and to name it in errors. */
export const CONFIG_ENV_NAMES: Record<keyof RunnerConfigInput, string> = {
  queueUrl: ENV.JOB_QUEUE_URL,
  dlqUrl: ENV.DLQ_URL,
  eventsQueueUrl: ENV.EVENTS_QUEUE_URL,
  tenantsTable: ENV.TENANTS_TABLE,
  usageTable: ENV.USAGE_TABLE,
  jobsTable: ENV.JOBS_TABLE,
  mediaBucket: ENV.MEDIA_BUCKET,
  signingKeys: ENV.SIGNING_KEYS,
  modelId: ENV.MODEL_ID,
  modelDir: ENV.MODEL_DIR,
  provider: ENV.PROVIDER,
  t5: RUNNER_ENV.T5,
  region: 'AWS_REGION',
  sqsEndpoint: ENV.AWS_ENDPOINT_SQS,
  s3Endpoint: ENV.AWS_ENDPOINT_S3,
  dynamodbEndpoint: ENV.AWS_ENDPOINT_DYNAMODB,
  runnerId: RUNNER_ENV.RUNNER_ID,
  waitTimeSeconds: RUNNER_ENV.WAIT_TIME_SECONDS,
  visibilityTimeoutSeconds: RUNNER_ENV.VISIBILITY_TIMEOUT_SECONDS,
  heartbeatIntervalSeconds: RUNNER_ENV.HEARTBEAT_INTERVAL_SECONDS,
  progressIntervalMs: RUNNER_ENV.PROGRESS_INTERVAL_MS,
  graceSeconds: RUNNER_ENV.GRACE_SECONDS,
  healthPort: RUNNER_ENV.HEALTH_PORT,
  healthHost: RUNNER_ENV.HEALTH_HOST,
  maxReceives: RUNNER_ENV.MAX_RECEIVES,
  retryBackoffSeconds: RUNNER_ENV.RETRY_BACKOFF_SECONDS,
  dlqSweepIntervalSeconds: RUNNER_ENV.DLQ_SWEEP_INTERVAL_SECONDS,
  dlqHideSeconds: RUNNER_ENV.DLQ_HIDE_SECONDS,
  verifyModel: RUNNER_ENV.VERIFY_MODEL,
  requireManifest: RUNNER_ENV.REQUIRE_MANIFEST,
  logLevel: RUNNER_ENV.LOG_LEVEL,
};

const MAX_VISIBILITY_SECONDS = 43_200;

const present = (v: Raw): v is string | number | boolean => v !== undefined && v !== '';

function required() {
  return z
    .union([z.string(), z.number(), z.boolean()])
    .optional()
    .transform((v, ctx) => {
      if (!present(v) || typeof v !== 'string' || v.trim() === '') {
        ctx.addIssue({ code: 'custom', message: present(v) ? 'must be a string' : 'is required' });
        return z.NEVER;
      }
      return v.trim();
    });
}

function optionalUrl() {
  return z
    .union([z.string(), z.number(), z.boolean()])
    .optional()
    .transform((v, ctx) => {
      if (!present(v)) return undefined;
      const s = String(v);
      if (!URL.canParse(s) || !/^https?:$/.test(new URL(s).protocol)) {
        ctx.addIssue({ code: 'custom', message: `must be an http(s) URL, got ${JSON.stringify(s)}` });
        return z.NEVER;
      }
      return s;
    });
}

function int(min: number, max: number, fallback: number, unit = '') {
  return z
    .union([z.string(), z.number(), z.boolean()])
    .optional()
    .transform((v, ctx) => {
      if (!present(v)) return fallback;
      const n =
        typeof v === 'number' ? v : typeof v === 'string' && /^-?\d+$/.test(v.trim()) ? Number(v) : NaN;
      if (!Number.isInteger(n) || n < min || n > max) {
        ctx.addIssue({
          code: 'custom',
          message: `must be an integer from ${min} to ${max}${unit}, got ${JSON.stringify(v)}`,
        });
        return z.NEVER;
      }
      return n;
    });
}

function oneOf<T extends string>(allowed: readonly T[], fallback: T) {
  return z
    .union([z.string(), z.number(), z.boolean()])
    .optional()
    .transform((v, ctx): T => {
      if (!present(v)) return fallback;
      const s = String(v).trim();
      if (!(allowed as readonly string[]).includes(s)) {
        ctx.addIssue({
          code: 'custom',
          message: `must be one of ${allowed.join(', ')}, got ${JSON.stringify(v)}`,
        });
        return z.NEVER;
      }
      return s as T;
    });
}

function bool(fallback: boolean) {
  return z
    .union([z.string(), z.number(), z.boolean()])
    .optional()
    .transform((v, ctx) => {
      if (!present(v)) return fallback;
      if (typeof v === 'boolean') return v;
      const s = String(v).trim().toLowerCase();
      if (['true', '1', 'yes'].includes(s)) return true;
      if (['false', '0', 'no'].includes(s)) return false;
      ctx.addIssue({ code: 'custom', message: `must be true or false, got ${JSON.stringify(v)}` });
      return z.NEVER;
    });
}

const Schema = z.object({
  queueUrl: required(),
  dlqUrl: required(),
  tenantsTable: z
    .union([z.string(), z.number(), z.boolean()])
    .optional()
    .transform((v) => (present(v) ? String(v) : undefined)),
  usageTable: z
    .union([z.string(), z.number(), z.boolean()])
    .optional()
    .transform((v) => (present(v) ? String(v) : undefined)),
  eventsQueueUrl: z
    .union([z.string(), z.number(), z.boolean()])
    .optional()
    .transform((v) => (present(v) ? String(v) : undefined)),
  jobsTable: required(),
  mediaBucket: required(),
  signingKeys: required().transform((json, ctx): SigningKeys => {
    try {
      return parseSigningKeys(json);
    } catch (err) {
      // The message of parseSigningKeys never contains the secrets.
      ctx.addIssue({ code: 'custom', message: (err as Error).message });
      return z.NEVER;
    }
  }),
  modelId: required(),
  modelDir: required(),
  provider: oneOf(EXECUTION_PROVIDERS, 'cpu'),
  t5: bool(true),
  region: z
    .union([z.string(), z.number(), z.boolean()])
    .optional()
    .transform((v) => (present(v) ? String(v) : undefined)),
  sqsEndpoint: optionalUrl(),
  s3Endpoint: optionalUrl(),
  dynamodbEndpoint: optionalUrl(),
  runnerId: z
    .union([z.string(), z.number(), z.boolean()])
    .optional()
    .transform((v) => (present(v) ? String(v) : undefined)),
  waitTimeSeconds: int(1, 20, 20, ' s'),
  visibilityTimeoutSeconds: int(2, MAX_VISIBILITY_SECONDS, 60, ' s'),
  heartbeatIntervalSeconds: int(1, MAX_VISIBILITY_SECONDS, 15, ' s'),
  progressIntervalMs: int(0, 60_000, 1000, ' ms'),
  graceSeconds: int(0, 3600, 20, ' s'),
  healthPort: int(0, 65_535, 8080),
  healthHost: z
    .union([z.string(), z.number(), z.boolean()])
    .optional()
    .transform((v) => (present(v) ? String(v) : '0.0.0.0')),
  maxReceives: int(1, 1000, MAX_RECEIVES),
  retryBackoffSeconds: int(0, 900, 5, ' s'),
  dlqSweepIntervalSeconds: int(1, 86_400, 60, ' s'),
  dlqHideSeconds: int(1, MAX_VISIBILITY_SECONDS, MAX_VISIBILITY_SECONDS, ' s'),
  verifyModel: oneOf(MODEL_VERIFY_MODES, 'manifest'),
  requireManifest: bool(false),
  logLevel: oneOf(LOG_LEVELS, 'info'),
});

/**
 * Validates a configuration. `names` says how to call each field in error messages (the
 * environment variable names when reading the environment, the field names otherwise).
 */
export function parseRunnerConfig(
  input: RunnerConfigInput,
  names: Partial<Record<keyof RunnerConfigInput, string>> = {},
): RunnerConfig {
  const label = (field: string) => names[field as keyof RunnerConfigInput] ?? field;
  const parsed = Schema.safeParse(input);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((i) => `${label(String(i.path[0] ?? 'config'))}: ${i.message}`),
    );
  }
  const c = parsed.data;
  if (c.heartbeatIntervalSeconds * 2 >= c.visibilityTimeoutSeconds) {
    throw new ConfigError([
      `${label('heartbeatIntervalSeconds')}: must be less than half of ${label('visibilityTimeoutSeconds')} ` +
        `(got ${c.heartbeatIntervalSeconds} s and ${c.visibilityTimeoutSeconds} s): the job lease lasts ` +
        'visibility − heartbeat and must outlive one heartbeat interval',
    ]);
  }
  if (c.requireManifest && c.verifyModel === 'off') {
    throw new ConfigError([
      `${label('requireManifest')}: cannot be true while ${label('verifyModel')} is off ` +
        '(a required manifest that is never checked protects nothing)',
    ]);
  }
  const endpoints: RunnerConfig['endpoints'] = {};
  if (c.sqsEndpoint) endpoints.sqs = c.sqsEndpoint;
  if (c.s3Endpoint) endpoints.s3 = c.s3Endpoint;
  if (c.dynamodbEndpoint) endpoints.dynamodb = c.dynamodbEndpoint;
  return {
    queueUrl: c.queueUrl,
    dlqUrl: c.dlqUrl,
    eventsQueueUrl: c.eventsQueueUrl,
    tenantsTable: c.tenantsTable,
    usageTable: c.usageTable,
    jobsTable: c.jobsTable,
    mediaBucket: c.mediaBucket,
    signingKeys: c.signingKeys,
    modelId: c.modelId,
    modelDir: c.modelDir,
    provider: c.provider,
    t5: c.t5,
    region: c.region,
    endpoints,
    runnerId: c.runnerId ?? `${hostname()}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`,
    waitTimeSeconds: c.waitTimeSeconds,
    visibilityTimeoutSeconds: c.visibilityTimeoutSeconds,
    heartbeatIntervalSeconds: c.heartbeatIntervalSeconds,
    leaseMs: (c.visibilityTimeoutSeconds - c.heartbeatIntervalSeconds) * 1000,
    progressIntervalMs: c.progressIntervalMs,
    graceSeconds: c.graceSeconds,
    healthPort: c.healthPort,
    healthHost: c.healthHost,
    maxReceives: c.maxReceives,
    retryBackoffSeconds: c.retryBackoffSeconds,
    dlqSweepIntervalSeconds: c.dlqSweepIntervalSeconds,
    dlqHideSeconds: c.dlqHideSeconds,
    verifyModel: c.verifyModel,
    requireManifest: c.requireManifest,
    logLevel: c.logLevel,
  };
}

/** Reads the configuration from environment variables (AWS_DEFAULT_REGION as a region fallback). */
export function runnerConfigFromEnv(env: Record<string, string | undefined> = process.env): RunnerConfig {
  const input: RunnerConfigInput = {};
  for (const [field, name] of Object.entries(CONFIG_ENV_NAMES) as [keyof RunnerConfigInput, string][]) {
    input[field] = env[name];
  }
  input.region ??= env['AWS_DEFAULT_REGION'];
  return parseRunnerConfig(input, CONFIG_ENV_NAMES);
}
