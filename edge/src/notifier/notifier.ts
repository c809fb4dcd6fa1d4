/**
 * The webhook notifier's core, platform-free: one events-queue message in, at most one signed POST
 * out. Flow: parse -> job (tenant check) -> filter (first sends only) -> due yet? (else re-delay)
 * -> claim the attempt in the delivery log -> SSRF check -> sign with the tenant's secret -> POST
 * (no redirects, timeout) -> record the attempt -> on failure re-enqueue the next attempt with a
 * delay, until the schedule is spent. SQS caps a delay at 15 minutes, so a longer wait travels as
 * several hops that carry the due time.
 */
import {
  type EventsQueueMessage,
  EventsQueueMessageSchema,
  type JobRecord,
  signWebhook,
  type TenantRecord,
  webhookWants,
} from '@sd3/shared';
import type { Clock } from '../deps.js';
import type { Logger } from '../logger.js';
import type { DeliveryStore, StoredDelivery } from './delivery-store.js';
import { checkWebhookTarget, type ResolvedAddress, type ResolveHost } from './ssrf.js';

export interface WebhookPost {
  url: URL;
  /** The checked address to connect to; TLS still verifies the URL's host name. */
  address: ResolvedAddress;
  body: string;
  headers: Record<string, string>;
  timeoutMs: number;
}

/** Sends one POST without following redirects; resolves with the status, rejects on no response. */
export type PostWebhook = (request: WebhookPost) => Promise<{ status: number }>;

export interface NotifierDeps {
  jobs: { get(jobId: string): Promise<JobRecord | null> };
  tenants: { get(tenantId: string): Promise<TenantRecord | null> };
  deliveries: DeliveryStore;
  /** Puts a message back on the events queue, invisible for `delaySeconds` (0-900). */
  requeue(message: EventsQueueMessage, delaySeconds: number): Promise<void>;
  resolve: ResolveHost;
  post: PostWebhook;
  clock?: Clock;
  logger?: Logger;
  /** Delay before each retry (ms); attempts = length + 1. Default DEFAULT_RETRY_SCHEDULE_MS. */
  retryScheduleMs?: readonly number[];
  /** Per-attempt timeout (ms), default 10 000. */
  timeoutMs?: number;
  /** Local stack only: http://127.0.0.1 targets are allowed. */
  allowLocalHttp?: boolean;
}

/** 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h: eight attempts over about 27.6 hours. */
export const DEFAULT_RETRY_SCHEDULE_MS: readonly number[] = [
  5_000,
  5 * 60_000,
  30 * 60_000,
  2 * 3600_000,
  5 * 3600_000,
  10 * 3600_000,
  10 * 3600_000,
];

export const MAX_SQS_DELAY_SECONDS = 900;

export type HandleOutcome = 'delivered' | 'retry_scheduled' | 'failed' | 'delayed' | 'skipped' | 'invalid';

const silent: Logger = { log() {} };

/** Delay for SQS: whole seconds, at least 0, at most 15 minutes (later hops carry the rest). */
export function delaySecondsUntil(dueAt: number, now: number): number {
  return Math.min(MAX_SQS_DELAY_SECONDS, Math.max(0, Math.ceil((dueAt - now) / 1000)));
}

async function attemptPost(
  deps: NotifierDeps,
  record: JobRecord,
  tenant: TenantRecord | null,
  message: EventsQueueMessage,
  now: number,
): Promise<{ ok: boolean; status: number | null; error: string | null; final: boolean }> {
  const url = record.webhookUrl!;
  const target = await checkWebhookTarget(url, {
    resolve: deps.resolve,
    ...(deps.allowLocalHttp ? { allowLocalHttp: true } : {}),
  });
  // A refused target stays refused: retrying would only probe the network again.
  if (!target.ok) return { ok: false, status: null, error: target.reason, final: true };
  const secrets = [tenant?.webhookSecret, tenant?.webhookSecretPrevious].filter(
    (s): s is string => typeof s === 'string' && s.length > 0,
  );
  if (secrets.length === 0) {
    return { ok: false, status: null, error: 'the tenant has no webhook secret', final: false };
  }
  const body = JSON.stringify(message.event);
  const headers = {
    ...(await signWebhook(secrets, message.event.id, Math.floor(now / 1000), body)),
    'content-type': 'application/json',
    'user-agent': 'sd3-webhooks/1',
  };
  try {
    const res = await deps.post({
      url: target.url,
      address: target.address,
      body,
      headers,
      timeoutMs: deps.timeoutMs ?? 10_000,
    });
    if (res.status >= 200 && res.status < 300)
      return { ok: true, status: res.status, error: null, final: false };
    const error =
      res.status >= 300 && res.status < 400 ? 'redirect refused: webhooks follow no redirects' : null;
    return { ok: false, status: res.status, error, final: false };
  } catch (err) {
    return { ok: false, status: null, error: (err as Error).message || String(err), final: false };
  }
}

/** Handles one events-queue message body. Throws only for infrastructure errors (retry the message). */
export async function handleEventMessage(body: string, deps: NotifierDeps): Promise<HandleOutcome> {
  const log = deps.logger ?? silent;
  const clock = deps.clock ?? { now: () => Date.now() };
  let raw: unknown;
  try {
    raw = JSON.parse(body);
  } catch {
    log.log('error', 'events message is not JSON; dropped');
    return 'invalid';
  }
  const parsed = EventsQueueMessageSchema.safeParse(raw);
  if (!parsed.success) {
    log.log('error', 'events message does not match the schema; dropped', { issues: parsed.error.issues });
    return 'invalid';
  }
  const message = parsed.data;
  const fields = { job_id: message.job_id, event_id: message.event.id, tenant_id: message.tenant_id };
  const record = await deps.jobs.get(message.job_id);
  if (!record || record.tenantId !== message.tenant_id || message.event.generation_id !== record.jobId) {
    log.log('warn', 'events message for an unknown job or another tenant; dropped', fields);
    return 'skipped';
  }
  if (!record.webhookUrl) return 'skipped';
  // Retries and resends carry `delivery`; only a first send is filtered.
  if (!message.delivery && !webhookWants(record.webhookEvents, message.event.type)) return 'skipped';

  const delivery = message.delivery ?? { attempt: 1, due_at: clock.now(), round: 1 };
  let now = clock.now();
  if (delivery.due_at > now + 500) {
    await deps.requeue(message, delaySecondsUntil(delivery.due_at, now));
    return 'delayed';
  }
  const init = { eventId: message.event.id, eventType: message.event.type, url: record.webhookUrl };
  const timeoutMs = deps.timeoutMs ?? 10_000;
  const claim = await deps.deliveries.claim(
    record.jobId,
    init,
    delivery.round,
    delivery.attempt,
    now,
    timeoutMs + 20_000,
  );
  if (claim.kind === 'skip') {
    await resumeOwedRetry(deps, message, claim.record, delivery);
    log.log('info', 'webhook attempt skipped', { ...fields, attempt: delivery.attempt, why: claim.why });
    return 'skipped';
  }
  const tenant = await deps.tenants.get(record.tenantId);
  const started = clock.now();
  const result = await attemptPost(deps, record, tenant, message, started);
  now = clock.now();
  const schedule = deps.retryScheduleMs ?? DEFAULT_RETRY_SCHEDULE_MS;
  const retryIndex = delivery.attempt - 1 - claim.record.round_start;
  const retryDelay = result.ok || result.final ? undefined : schedule[retryIndex];
  const nextDue = retryDelay === undefined ? null : now + retryDelay;
  const state = result.ok ? 'delivered' : nextDue === null ? 'failed' : 'pending';
  const attempt = {
    attempt: delivery.attempt,
    at: new Date(started).toISOString(),
    status_code: result.status,
    error: result.error,
    duration_ms: Math.max(0, Math.round(now - started)),
  };
  const recorded = await deps.deliveries.record(record.jobId, init.eventId, claim.token, {
    attempt,
    state,
    nextAttemptAt: nextDue === null ? null : new Date(nextDue).toISOString(),
    deliveredAt: result.ok ? new Date(now).toISOString() : null,
  });
  log.log(result.ok ? 'info' : 'warn', `webhook attempt ${state}`, {
    ...fields,
    attempt: delivery.attempt,
    status_code: result.status,
    error: result.error,
    recorded,
  });
  if (!recorded) return 'skipped';
  if (nextDue !== null) {
    await deps.requeue(
      { ...message, delivery: { attempt: delivery.attempt + 1, due_at: nextDue, round: delivery.round } },
      delaySecondsUntil(nextDue, now),
    );
    return 'retry_scheduled';
  }
  return result.ok ? 'delivered' : 'failed';
}

/**
 * A message whose attempt already ran, with a retry recorded as due but (maybe) never enqueued
 * (the notifier died between recording and re-enqueueing): enqueue it again. A duplicate is
 * harmless, the claim lets only one copy of an attempt run.
 */
async function resumeOwedRetry(
  deps: NotifierDeps,
  message: EventsQueueMessage,
  record: StoredDelivery | null,
  delivery: { attempt: number; round: number },
): Promise<void> {
  if (record?.state !== 'pending' || record.round !== delivery.round) return;
  if (record.attempts.length !== delivery.attempt || record.next_attempt_at === null) return;
  const due = Date.parse(record.next_attempt_at);
  const now = (deps.clock ?? { now: () => Date.now() }).now();
  await deps.requeue(
    { ...message, delivery: { attempt: delivery.attempt + 1, due_at: due, round: delivery.round } },
    delaySecondsUntil(due, now),
  );
}
