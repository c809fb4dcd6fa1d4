/**
 * The reconciler on AWS services, from environment variables (shared ENV / RECONCILER_ENV names):
 * the jobs and tenants tables (and the usage ledger for settlements), the jobs queues, the events
 * queue and the envelope signing keys; endpoint overrides for the emulators.
 */
import { EDGE_ENV, ENV, parseSigningKeys, RECONCILER_ENV, type SigningKeys } from '@sd3/shared';
import { z } from 'zod';
import { DynamoBillingStore } from '../adapters/aws/dynamo-billing-store.js';
import { createSdkClients, SDK_CLIENT_ENV } from '../adapters/aws/sdk-clients.js';
import { SqsEventPublisher } from '../adapters/aws/sqs-event-publisher.js';
import { SqsJobQueue } from '../adapters/aws/sqs-job-queue.js';
import { describeIssues } from '../deps.js';
import { createJsonLogger } from '../logger.js';
import { noEventPublisher } from '../ports/index.js';
import { resolveReconcilerConfig } from './config.js';
import type { ReconcilerDeps } from './context.js';
import { OpenJobs } from './open-jobs.js';
import { listOpenReservations } from './open-reservations.js';
import { sqsQueueDepth } from './queue-depth.js';
import { createReconciler, type Reconciler } from './reconciler.js';

const queueUrl = z.string().regex(/^https?:\/\/\S+$/, { message: 'must be a queue URL' });
const wholeNumber = (what: string) =>
  z
    .string()
    .regex(/^\d+$/, { message: `must be a whole number (${what})` })
    .transform(Number);

const EnvSchema = z.object({
  [ENV.JOBS_TABLE]: z.string().min(1),
  [ENV.TENANTS_TABLE]: z.string().min(1),
  [ENV.USAGE_TABLE]: z.string().min(1).optional(),
  [ENV.EVENTS_QUEUE_URL]: queueUrl.optional(),
  [ENV.JOB_QUEUES]: z.string().transform((text, ctx): Record<string, string> => {
    try {
      const parsed = z.record(z.string().min(1), queueUrl).safeParse(JSON.parse(text));
      if (parsed.success && Object.keys(parsed.data).length > 0) return parsed.data;
    } catch {
      // reported below
    }
    ctx.addIssue({ code: 'custom', message: 'must be a JSON object of model id -> jobs queue URL' });
    return z.NEVER;
  }),
  [ENV.SIGNING_KEYS]: z.string().transform((text, ctx): SigningKeys => {
    try {
      return parseSigningKeys(text);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: err instanceof Error ? err.message : String(err) });
      return z.NEVER;
    }
  }),
  [ENV.SIGNING_KEY_ID]: z.string().min(1),
  [EDGE_ENV.ENVELOPE_MAX_AGE_SECONDS]: wholeNumber('seconds').optional(),
  [RECONCILER_ENV.STALE_AFTER_MS]: wholeNumber('milliseconds').optional(),
  [RECONCILER_ENV.MAX_RESENDS]: wholeNumber('resends').optional(),
  ...SDK_CLIENT_ENV,
});

export interface AwsReconciler {
  reconciler: Reconciler;
  deps: ReconcilerDeps;
  destroy(): void;
}

export function createAwsReconciler(
  env: Readonly<Record<string, string | undefined>>,
  overrides: Partial<ReconcilerDeps> = {},
): AwsReconciler {
  const parsed = EnvSchema.safeParse(env);
  if (!parsed.success) throw new Error(`invalid reconciler environment:\n${describeIssues(parsed.error)}`);
  const e = parsed.data;
  const kid = e[ENV.SIGNING_KEY_ID];
  if (!e[ENV.SIGNING_KEYS].has(kid)) {
    throw new Error(
      `invalid reconciler environment:\n  ${ENV.SIGNING_KEY_ID}: no signing key with id ${kid}`,
    );
  }
  const clients = createSdkClients(e);
  const { doc, sqs } = clients;
  const jobsTable = e[ENV.JOBS_TABLE];
  const tenantsTable = e[ENV.TENANTS_TABLE];
  const usageTable = e[ENV.USAGE_TABLE];
  const queues = e[ENV.JOB_QUEUES];
  const eventsUrl = e[ENV.EVENTS_QUEUE_URL];
  const deps: ReconcilerDeps = {
    jobs: new OpenJobs(doc, jobsTable),
    billing: new DynamoBillingStore(doc, {
      tenants: tenantsTable,
      jobs: jobsTable,
      ...(usageTable ? { usage: usageTable } : {}),
    }),
    openReservations: () => listOpenReservations(doc, tenantsTable),
    queue: new SqsJobQueue(sqs, queues),
    queueDepth: sqsQueueDepth(sqs, queues),
    events: eventsUrl ? new SqsEventPublisher(sqs, eventsUrl) : noEventPublisher,
    models: Object.keys(queues),
    signing: { kid, keys: e[ENV.SIGNING_KEYS] },
    envelopeMaxAgeSeconds: e[EDGE_ENV.ENVELOPE_MAX_AGE_SECONDS] ?? 3600,
    clock: { now: () => Date.now() },
    logger: createJsonLogger(),
    config: resolveReconcilerConfig({
      ...(e[RECONCILER_ENV.STALE_AFTER_MS] !== undefined
        ? { staleAfterMs: e[RECONCILER_ENV.STALE_AFTER_MS] }
        : {}),
      ...(e[RECONCILER_ENV.MAX_RESENDS] !== undefined ? { maxResends: e[RECONCILER_ENV.MAX_RESENDS] } : {}),
    }),
    ...overrides,
  };
  return {
    reconciler: createReconciler(deps),
    deps,
    destroy: clients.destroy,
  };
}
