/**
 * EdgeDeps from environment variables (shared ENV / EDGE_ENV names): the AWS SDK v3 clients, with
 * endpoint overrides for the local emulators, behind the ports. Every setting is checked with zod
 * and a bad one fails here with its variable name.
 */
import { EDGE_ENV, ENV, ModelInfoSchema, parseSigningKeys, type SigningKeys } from '@sd3/shared';
import { z } from 'zod';
import { describeIssues, type EdgeDeps } from '../../deps.js';
import { DynamoDeliveryStore } from '../../notifier/delivery-store.js';
import { DynamoBillingStore } from './dynamo-billing-store.js';
import { DynamoIdempotencyStore } from './dynamo-idempotency-store.js';
import { DynamoJobStore } from './dynamo-job-store.js';
import { DynamoKeyStore } from './dynamo-key-store.js';
import { DynamoRateLimitStore } from './dynamo-rate-limit-store.js';
import { DynamoUsageStore } from './dynamo-usage-store.js';
import { S3ObjectStore } from './s3-object-store.js';
import { createSdkClients, SDK_CLIENT_ENV } from './sdk-clients.js';
import { SqsEventPublisher } from './sqs-event-publisher.js';
import { SqsJobQueue } from './sqs-job-queue.js';

export type Env = Readonly<Record<string, string | undefined>>;

function jsonOf<T extends z.ZodType>(schema: T, what: string) {
  return z.string().transform((text, ctx): z.infer<T> => {
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch {
      ctx.addIssue({ code: 'custom', message: `must be JSON: ${what}` });
      return z.NEVER;
    }
    const parsed = schema.safeParse(raw);
    if (!parsed.success) {
      for (const issue of parsed.error.issues) {
        const at = issue.path.length ? ` at ${issue.path.join('.')}` : '';
        ctx.addIssue({ code: 'custom', message: `${what}${at}: ${issue.message}` });
      }
      return z.NEVER;
    }
    return parsed.data;
  });
}

const positiveInt = (what: string) =>
  z
    .string()
    .regex(/^\d+$/, { message: `must be a whole number (${what})` })
    .transform(Number);

const EnvSchema = z.object({
  [ENV.JOBS_TABLE]: z.string().min(1),
  [ENV.KEYS_TABLE]: z.string().min(1),
  [ENV.IDEMPOTENCY_TABLE]: z.string().min(1),
  [ENV.RATE_LIMITS_TABLE]: z.string().min(1),
  [ENV.MEDIA_BUCKET]: z.string().min(1),
  /** Optional: without it no credit balance is reserved (quotes are still recorded). */
  [ENV.TENANTS_TABLE]: z.string().min(1).optional(),
  /** Optional: without it no usage ledger is written and GET /v1/usage is not served. */
  [ENV.USAGE_TABLE]: z.string().min(1).optional(),
  /** Optional: without it the edge sends no events (no webhooks). */
  [ENV.EVENTS_QUEUE_URL]: z
    .string()
    .regex(/^https?:\/\/\S+$/, { message: 'must be a queue URL' })
    .optional(),
  [ENV.JOB_QUEUES]: jsonOf(
    // Not URL-checked: emulator queue URLs (sqs.<region>.127.0.0.1) are not WHATWG-valid, and
    // the SDK sends to the client's endpoint anyway.
    z.record(z.string().min(1), z.string().regex(/^https?:\/\/\S+$/, { message: 'must be a queue URL' })),
    'an object of model id -> jobs queue URL',
  ),
  [ENV.SIGNING_KEYS]: z.string().transform((text, ctx): SigningKeys => {
    try {
      return parseSigningKeys(text);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: err instanceof Error ? err.message : String(err) });
      return z.NEVER;
    }
  }),
  [ENV.SIGNING_KEY_ID]: z.string().min(1),
  [EDGE_ENV.MODELS]: jsonOf(z.array(ModelInfoSchema).min(1), 'an array of models (GET /v1/models objects)'),
  [EDGE_ENV.DEFAULT_MODEL]: z.string().min(1).optional(),
  [EDGE_ENV.KEY_CACHE_TTL_MS]: positiveInt('milliseconds').optional(),
  [EDGE_ENV.ENVELOPE_MAX_AGE_SECONDS]: positiveInt('seconds').optional(),
  [EDGE_ENV.DEFAULT_REQUESTS_PER_MINUTE]: positiveInt('requests per minute').optional(),
  [EDGE_ENV.DEFAULT_CONCURRENT_JOBS]: positiveInt('jobs').optional(),
  ...SDK_CLIENT_ENV,
});

export interface AwsDeps extends EdgeDeps {
  /** Closes the SDK clients' sockets. */
  destroy(): void;
}

export function createAwsDeps(env: Env, overrides: Partial<EdgeDeps> = {}): AwsDeps {
  const parsed = EnvSchema.safeParse(env);
  if (!parsed.success) throw new Error(`invalid edge environment:\n${describeIssues(parsed.error)}`);
  const e = parsed.data;
  // Cross-variable checks (zod skips object refinements when a field already failed).
  const problems: string[] = [];
  for (const m of e[EDGE_ENV.MODELS]) {
    if (!e[ENV.JOB_QUEUES][m.id]) problems.push(`  ${ENV.JOB_QUEUES}: no jobs queue for model ${m.id}`);
  }
  if (!e.AWS_REGION && !e.AWS_DEFAULT_REGION) problems.push('  AWS_REGION: the AWS region is required');
  if (problems.length > 0) throw new Error(`invalid edge environment:\n${problems.join('\n')}`);
  const clients = createSdkClients(e);
  const { doc, sqs } = clients;
  const s3 = clients.s3();
  const models = e[EDGE_ENV.MODELS];
  const tenantsTable = e[ENV.TENANTS_TABLE];
  const usageTable = e[ENV.USAGE_TABLE];
  const eventsQueueUrl = e[ENV.EVENTS_QUEUE_URL];
  const defaultModel = e[EDGE_ENV.DEFAULT_MODEL] ?? (models.find((m) => m.default) ?? models[0]!).id;
  return {
    jobs: new DynamoJobStore(doc, e[ENV.JOBS_TABLE]),
    keys: new DynamoKeyStore(doc, e[ENV.KEYS_TABLE]),
    idempotency: new DynamoIdempotencyStore(doc, e[ENV.IDEMPOTENCY_TABLE]),
    rateLimits: new DynamoRateLimitStore(doc, e[ENV.RATE_LIMITS_TABLE]),
    queue: new SqsJobQueue(sqs, e[ENV.JOB_QUEUES]),
    ...(eventsQueueUrl ? { events: new SqsEventPublisher(sqs, eventsQueueUrl) } : {}),
    deliveries: new DynamoDeliveryStore(doc, e[ENV.JOBS_TABLE]),
    billing: tenantsTable
      ? new DynamoBillingStore(doc, {
          tenants: tenantsTable,
          jobs: e[ENV.JOBS_TABLE],
          ...(usageTable ? { usage: usageTable } : {}),
        })
      : null,
    usage: usageTable ? new DynamoUsageStore(doc, usageTable) : null,
    objects: new S3ObjectStore(s3, e[ENV.MEDIA_BUCKET]),
    models,
    defaultModel,
    signing: { kid: e[ENV.SIGNING_KEY_ID], keys: e[ENV.SIGNING_KEYS] },
    ...(e[EDGE_ENV.KEY_CACHE_TTL_MS] !== undefined ? { keyCacheTtlMs: e[EDGE_ENV.KEY_CACHE_TTL_MS] } : {}),
    keyLimits: {
      ...(e[EDGE_ENV.DEFAULT_REQUESTS_PER_MINUTE] !== undefined
        ? { requestsPerMinute: e[EDGE_ENV.DEFAULT_REQUESTS_PER_MINUTE] }
        : {}),
      ...(e[EDGE_ENV.DEFAULT_CONCURRENT_JOBS] !== undefined
        ? { concurrentJobs: e[EDGE_ENV.DEFAULT_CONCURRENT_JOBS] }
        : {}),
    },
    ...(e[EDGE_ENV.ENVELOPE_MAX_AGE_SECONDS] !== undefined
      ? { envelopeMaxAgeSeconds: e[EDGE_ENV.ENVELOPE_MAX_AGE_SECONDS] }
      : {}),
    ...overrides,
    destroy: clients.destroy,
  };
}
