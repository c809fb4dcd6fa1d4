/**
 * Webhooks: Standard Webhooks signing (webhook-id / webhook-timestamp / webhook-signature), the
 * per-tenant `whsec_` secrets, the events-queue message between the job writers (edge, runner) and
 * the notifier, and the delivery log kept per job. Web Crypto only (it ships in the edge bundle).
 */
import { z } from 'zod';
import { EVENT_TYPES, type EventType } from './generation-request.js';
import { JobEventSchema, TERMINAL_STATUSES } from './job.js';

export const WEBHOOK_SECRET_PREFIX = 'whsec_';
export const WEBHOOK_HEADERS = {
  id: 'webhook-id',
  timestamp: 'webhook-timestamp',
  signature: 'webhook-signature',
} as const;

/** Without `webhook_events`, a job's webhook gets its terminal events only. */
export const DEFAULT_WEBHOOK_EVENTS: readonly EventType[] = TERMINAL_STATUSES.map(
  (s) => `generation.${s}` as EventType,
);

/** Whether a job with this `webhook_events` filter wants an event of this type. */
export function webhookWants(filter: readonly EventType[] | undefined, type: EventType): boolean {
  return (filter && filter.length > 0 ? filter : DEFAULT_WEBHOOK_EVENTS).includes(type);
}

function toBase64(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}

function fromBase64(text: string): Uint8Array {
  const s = atob(text);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

/** A new secret: `whsec_` + base64 of 32 random bytes. */
export function generateWebhookSecret(): string {
  return WEBHOOK_SECRET_PREFIX + toBase64(crypto.getRandomValues(new Uint8Array(32)));
}

/** The HMAC key bytes of a `whsec_…` secret; throws on a malformed or too short secret. */
export function webhookSecretBytes(secret: string): Uint8Array {
  if (!secret.startsWith(WEBHOOK_SECRET_PREFIX)) throw new Error('webhook secret must start with whsec_');
  let bytes: Uint8Array;
  try {
    bytes = fromBase64(secret.slice(WEBHOOK_SECRET_PREFIX.length));
  } catch {
    throw new Error('webhook secret must be whsec_ followed by base64');
  }
  if (bytes.length < 24 || bytes.length > 64) throw new Error('webhook secret must hold 24 to 64 bytes');
  return bytes;
}

async function hmacBase64(secret: string, content: string): Promise<string> {
  const key = await crypto.subtle.importKey(
    'raw',
    webhookSecretBytes(secret) as Uint8Array<ArrayBuffer>,
    { name: 'HMAC', hash: 'SHA-256' },
    false,
    ['sign'],
  );
  const mac = await crypto.subtle.sign('HMAC', key, new TextEncoder().encode(content));
  return toBase64(new Uint8Array(mac));
}

/**
 * The three headers for one delivery. `secrets` are the tenant's current secrets (more than one
 * while rotating): each signs, the signatures go space-separated so a receiver holding either
 * secret verifies. `timestampSeconds` is unix seconds.
 */
export async function signWebhook(
  secrets: readonly string[],
  id: string,
  timestampSeconds: number,
  body: string,
): Promise<Record<string, string>> {
  if (secrets.length === 0) throw new Error('no webhook secret to sign with');
  const content = `${id}.${timestampSeconds}.${body}`;
  const signatures = await Promise.all(secrets.map(async (s) => `v1,${await hmacBase64(s, content)}`));
  return {
    [WEBHOOK_HEADERS.id]: id,
    [WEBHOOK_HEADERS.timestamp]: String(timestampSeconds),
    [WEBHOOK_HEADERS.signature]: signatures.join(' '),
  };
}

/**
 * Receiver side: true when one `v1` signature matches and the timestamp is within `toleranceSeconds`
 * of `nowSeconds` (replay protection).
 */
export async function verifyWebhook(
  secret: string,
  headers: { id: string; timestamp: string; signature: string },
  body: string,
  nowSeconds = Math.floor(Date.now() / 1000),
  toleranceSeconds = 300,
): Promise<boolean> {
  const ts = Number(headers.timestamp);
  if (!/^\d+$/.test(headers.timestamp) || Math.abs(nowSeconds - ts) > toleranceSeconds) return false;
  const expected = await hmacBase64(secret, `${headers.id}.${headers.timestamp}.${body}`);
  let ok = false;
  for (const part of headers.signature.split(' ')) {
    const [version, sig] = part.split(',', 2);
    if (version !== 'v1' || sig === undefined || sig.length !== expected.length) continue;
    let diff = 0;
    for (let i = 0; i < sig.length; i++) diff |= sig.charCodeAt(i) ^ expected.charCodeAt(i);
    if (diff === 0) ok = true;
  }
  return ok;
}

/**
 * One events-queue message: an event of a job, with what the notifier needs to route it. `delivery`
 * is absent on the first send and set when the notifier re-enqueues a retry: `attempt` is the number
 * of the next attempt, `due_at` (epoch ms) when it may run (SQS delays at most 15 min, so a longer
 * wait is several hops), `round` which resend round it belongs to.
 */
export const EventsQueueMessageSchema = z.object({
  v: z.literal(1),
  tenant_id: z.string().min(1),
  job_id: z.string().min(1),
  webhook_url: z.string().nullable(),
  webhook_events: z.array(z.enum(EVENT_TYPES)).optional(),
  event: JobEventSchema,
  delivery: z
    .object({
      attempt: z.number().int().min(1),
      due_at: z.number().int(),
      round: z.number().int().min(1),
    })
    .optional(),
});
export type EventsQueueMessage = z.infer<typeof EventsQueueMessageSchema>;

export const DELIVERY_STATES = ['pending', 'delivered', 'failed'] as const;
export type DeliveryState = (typeof DELIVERY_STATES)[number];

export const DeliveryAttemptSchema = z
  .object({
    attempt: z.number().int(),
    at: z.string().describe('ISO 8601'),
    status_code: z.number().int().nullable().describe('HTTP status, null when no response came'),
    error: z.string().nullable(),
    duration_ms: z.number().int(),
  })
  .meta({ id: 'WebhookAttempt' });
export type DeliveryAttempt = z.infer<typeof DeliveryAttemptSchema>;

/** The delivery log of one event of a job (stored in the job item's `deliveries` map by event id). */
export const DeliveryRecordSchema = z
  .object({
    event_id: z.string(),
    event_type: z.enum(EVENT_TYPES),
    url: z.string(),
    state: z.enum(DELIVERY_STATES),
    round: z.number().int().describe('Incremented by every resend'),
    attempts: z.array(DeliveryAttemptSchema),
    next_attempt_at: z.string().nullable().describe('ISO 8601, while a retry is scheduled'),
    delivered_at: z.string().nullable(),
  })
  .meta({ id: 'WebhookDelivery' });
export type DeliveryRecord = z.infer<typeof DeliveryRecordSchema>;

/** Builds the events-queue message of an event of a job (first send). */
export function eventsQueueMessage(
  record: { jobId: string; tenantId: string; webhookUrl?: string; webhookEvents?: EventType[] },
  event: z.infer<typeof JobEventSchema>,
): EventsQueueMessage {
  return {
    v: 1,
    tenant_id: record.tenantId,
    job_id: record.jobId,
    webhook_url: record.webhookUrl ?? null,
    ...(record.webhookEvents ? { webhook_events: record.webhookEvents } : {}),
    event,
  };
}
