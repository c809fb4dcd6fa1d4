/**
 * What the app needs from the outside: the stores behind ports, the model catalog, the envelope
 * signing keys, a clock and a logger. Checked once with zod when the app is built, so a bad
 * deployment fails at start with a message naming the setting, not on the first request.
 */
import {
  DEFAULT_KEY_LIMITS,
  KEY_LIMIT_BOUNDS,
  type KeyLimits,
  LIMITS,
  type ModelInfo,
  ModelInfoSchema,
  type SigningKeys,
} from '@sd3/shared';
import { z } from 'zod';
import { createJsonLogger, type Logger } from './logger.js';
import type { DeliveryStore } from './notifier/delivery-store.js';
import {
  type BillingStore,
  type EventPublisher,
  type IdempotencyStore,
  type JobQueue,
  type JobStore,
  type KeyStore,
  noEventPublisher,
  type ObjectStore,
  type RateLimitStore,
  type UsageStore,
} from './ports/index.js';

export interface Clock {
  /** Epoch milliseconds. */
  now(): number;
}

export interface EdgeTuning {
  /** How often Prefer: wait, the OpenAI route and SSE re-read a job (ms). */
  pollIntervalMs: number;
  /** SSE keep-alive comment interval (ms). */
  sseKeepAliveMs: number;
  /** An SSE stream closes after this long; the client resumes with Last-Event-ID (ms). */
  sseMaxDurationMs: number;
  /** How long POST /v1/images/generations waits for the job (s). */
  openAiWaitSeconds: number;
  /** Backoff between SQS send attempts; its length + 1 is the number of attempts (ms). */
  enqueueRetryDelaysMs: number[];
  /** Lifetime of an Idempotency-Key reservation (s). */
  idempotencyTtlSeconds: number;
  /** A key's lastUsedAt is written at most once per this interval (ms). */
  lastUsedIntervalMs: number;
}

export interface EdgeDeps {
  jobs: JobStore;
  keys: KeyStore;
  idempotency: IdempotencyStore;
  queue: JobQueue;
  objects: ObjectStore;
  /** Per-key request windows and job slots (shared across edge instances). */
  rateLimits: RateLimitStore;
  /** The events queue (webhooks); without it no events are sent. */
  events?: EventPublisher;
  /** The webhook delivery log (GET/POST /v1/generations/{id}/webhooks); null: not served. */
  deliveries?: DeliveryStore | null;
  /** Tenant credit balances; null: quotes are still recorded on jobs but nothing is reserved. */
  billing?: BillingStore | null;
  /** The usage ledger (GET /v1/usage); null: the route answers 404. */
  usage?: UsageStore | null;
  models: ModelInfo[];
  /** Used when a request names no model. */
  defaultModel: string;
  /** `kid` signs; every key in `keys` is one the runners accept. */
  signing: { kid: string; keys: SigningKeys };
  /** Lifetime of a signed envelope (s). Default 3600. */
  envelopeMaxAgeSeconds?: number;
  /** In-memory API key cache TTL (ms): how long a revocation may take to apply. Default 30 000. */
  keyCacheTtlMs?: number;
  /** Limits of keys that set none. Default DEFAULT_KEY_LIMITS. */
  keyLimits?: Partial<KeyLimits>;
  clock?: Clock;
  logger?: Logger;
  tuning?: Partial<EdgeTuning>;
}

export interface ResolvedDeps extends Required<Omit<EdgeDeps, 'tuning' | 'keyLimits'>> {
  tuning: EdgeTuning;
  keyLimits: KeyLimits;
  modelsById: ReadonlyMap<string, ModelInfo>;
}

export const DEFAULT_TUNING: EdgeTuning = {
  pollIntervalMs: 300,
  sseKeepAliveMs: 15_000,
  sseMaxDurationMs: 14 * 60_000,
  openAiWaitSeconds: LIMITS.maxWaitSeconds,
  enqueueRetryDelaysMs: [100, 400, 1600],
  idempotencyTtlSeconds: 24 * 3600,
  lastUsedIntervalMs: 5 * 60_000,
};

const port = (name: string) =>
  z.custom<object>((v) => typeof v === 'object' && v !== null, {
    message: `${name} implementation is required`,
  });

const DepsSchema = z
  .object({
    jobs: port('JobStore'),
    keys: port('KeyStore'),
    idempotency: port('IdempotencyStore'),
    queue: port('JobQueue'),
    objects: port('ObjectStore'),
    rateLimits: port('RateLimitStore'),
    models: z.array(ModelInfoSchema).min(1, { message: 'at least one model must be served' }),
    defaultModel: z.string().min(1),
    signing: z.object({
      kid: z.string().min(1),
      keys: z.custom<SigningKeys>((v) => v instanceof Map && v.size > 0, {
        message: 'must be a non-empty map of key id -> secret bytes',
      }),
    }),
    envelopeMaxAgeSeconds: z
      .number()
      .int()
      .min(60)
      .max(7 * 24 * 3600)
      .optional(),
    keyCacheTtlMs: z
      .number()
      .int()
      .min(0)
      .max(60_000, { message: 'at most 60000: a revoked key must be refused within a minute' })
      .optional(),
    keyLimits: z
      .object({
        requestsPerMinute: z
          .number()
          .int()
          .min(KEY_LIMIT_BOUNDS.requestsPerMinute.min)
          .max(KEY_LIMIT_BOUNDS.requestsPerMinute.max),
        concurrentJobs: z
          .number()
          .int()
          .min(KEY_LIMIT_BOUNDS.concurrentJobs.min)
          .max(KEY_LIMIT_BOUNDS.concurrentJobs.max),
      })
      .partial()
      .optional(),
    tuning: z
      .object({
        pollIntervalMs: z.number().int().min(10).max(10_000),
        sseKeepAliveMs: z.number().int().min(100),
        sseMaxDurationMs: z.number().int().min(1000),
        openAiWaitSeconds: z.number().min(0).max(LIMITS.maxWaitSeconds),
        enqueueRetryDelaysMs: z.array(z.number().int().min(0).max(30_000)).max(10),
        idempotencyTtlSeconds: z.number().int().min(60),
        lastUsedIntervalMs: z.number().int().min(0),
      })
      .partial()
      .optional(),
  })
  .superRefine((d, ctx) => {
    const ids = new Set<string>();
    d.models.forEach((m, i) => {
      if (ids.has(m.id))
        ctx.addIssue({ code: 'custom', path: ['models', i, 'id'], message: `duplicate model ${m.id}` });
      ids.add(m.id);
    });
    if (!ids.has(d.defaultModel)) {
      ctx.addIssue({
        code: 'custom',
        path: ['defaultModel'],
        message: `${d.defaultModel} is not one of the served models (${[...ids].join(', ')})`,
      });
    }
    const secret = d.signing.keys.get(d.signing.kid);
    if (!secret) {
      ctx.addIssue({
        code: 'custom',
        path: ['signing', 'kid'],
        message: `no signing key with id ${d.signing.kid}`,
      });
    } else if (secret.length < 32) {
      ctx.addIssue({
        code: 'custom',
        path: ['signing', 'keys'],
        message: 'the signing key must be at least 32 bytes',
      });
    }
  });

/** Formats zod issues as `path: message` lines. */
export function describeIssues(error: z.ZodError): string {
  return error.issues.map((i) => `  ${i.path.join('.') || '(root)'}: ${i.message}`).join('\n');
}

export function resolveDeps(deps: EdgeDeps): ResolvedDeps {
  const checked = DepsSchema.safeParse(deps);
  if (!checked.success) throw new Error(`invalid edge configuration:\n${describeIssues(checked.error)}`);
  return {
    jobs: deps.jobs,
    keys: deps.keys,
    idempotency: deps.idempotency,
    queue: deps.queue,
    objects: deps.objects,
    rateLimits: deps.rateLimits,
    events: deps.events ?? noEventPublisher,
    deliveries: deps.deliveries ?? null,
    billing: deps.billing ?? null,
    usage: deps.usage ?? null,
    models: deps.models,
    defaultModel: deps.defaultModel,
    signing: deps.signing,
    envelopeMaxAgeSeconds: deps.envelopeMaxAgeSeconds ?? 3600,
    keyCacheTtlMs: deps.keyCacheTtlMs ?? 30_000,
    keyLimits: { ...DEFAULT_KEY_LIMITS, ...deps.keyLimits },
    clock: deps.clock ?? { now: () => Date.now() },
    logger: deps.logger ?? createJsonLogger(),
    tuning: { ...DEFAULT_TUNING, ...deps.tuning },
    modelsById: new Map(deps.models.map((m) => [m.id, m])),
  };
}
