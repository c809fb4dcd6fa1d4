/**
 * The jobs-table item: the contract between the edge (creates, cancels, reads) and the runner
 * (claims, reports progress, finishes). Every status change is a conditional write on `status`
 * (and, for the runner, on `runnerId`), so a retried request or a redelivered message can never
 * run, finish or notify twice.
 *
 * Transitions:
 *   edge   create        -> queued            (attribute_not_exists(jobId))
 *   edge   cancel        queued -> canceled    | running: cancelRequested = true (runner stops between steps)
 *   edge   enqueue fails queued -> failed (enqueue_failed) after retries
 *   runner claim         queued -> running, or running with leaseUntil < now (the previous runner died)
 *   runner progress      running (runnerId = me): progress, leaseUntil, throttled to about 1/s
 *   runner finish        running (runnerId = me) -> succeeded | failed | canceled
 *   runner               any non-terminal -> failed for a forged/expired envelope or after the last attempt
 *   reconciler resend    queued, or running under a long-lapsed lease: resends + 1 (message sent again)
 *   reconciler lost      queued | running (lapsed) -> failed (message_lost) after maxResends
 *   reconciler close     terminal, settled, terminal event logged: REMOVE openModel
 */
import type { SettlementState } from './billing.js';
import type { EventType, NormalizedParams, OutputFormat } from './generation-request.js';
import type { JobEvent, JobPreview, JobStatus, JobTimings } from './job.js';
import { eventId } from './job.js';

export interface JobOutputRecord {
  index: number;
  key: string;
  format: OutputFormat;
  width: number;
  height: number;
  bytes: number;
  seed: number;
}

export const PREVIEW_MIMES = ['image/jpeg', 'image/webp'] as const;
export type PreviewMime = (typeof PREVIEW_MIMES)[number];

/** A live preview as the runner stores it on the job item: a few KB, at most about 128 px a side. */
export interface JobPreviewRecord {
  step: number;
  totalSteps: number;
  mime: PreviewMime;
  /** The encoded image, base64. */
  data: string;
  width: number;
  height: number;
}

export interface JobRecord {
  jobId: string;
  tenantId: string;
  keyId: string;
  model: string;
  status: JobStatus;
  /** Epoch milliseconds. */
  createdAt: number;
  updatedAt: number;
  startedAt?: number;
  completedAt?: number;
  params: NormalizedParams;
  inputImageKey?: string;
  user?: string;
  webhookUrl?: string;
  webhookEvents?: EventType[];
  progress?: { step: number; totalSteps: number };
  /** The latest live preview only (overwritten, kept small), when the request asked for previews. */
  preview?: JobPreviewRecord;
  outputs?: JobOutputRecord[];
  error?: { code: string; message: string };
  timings?: JobTimings;
  /** Event history, appended with list_append; ids are `<jobId>.<seq>`. */
  events: JobEvent[];
  cancelRequested?: boolean;
  /** Set once the SQS message was sent. */
  enqueuedAt?: number;
  messageId?: string;
  runnerId?: string;
  /** The running claim is valid until then (epoch ms); the runner extends it while it works. */
  leaseUntil?: number;
  attempts?: number;
  idempotencyKey?: string;
  /** The model id while status is queued, absent otherwise (sparse queue-position index). */
  queuedModel?: string;
  /**
   * The model id from create until the reconciler has seen the job terminal, settled and notified
   * (sparse openByModel index, edge/src/reconciler); only the reconciler removes it.
   */
  openModel?: string;
  /** Times the reconciler sent the job's message again because it was lost. */
  resends?: number;
  /** Times the reconciler sent the terminal event to the events queue again (no delivery logged). */
  eventResends?: number;
  /** Epoch ms of the last such event resend. */
  eventResentAt?: number;
  /** DynamoDB TTL, epoch seconds. */
  expiresAt: number;
  /** Price quote in millicredits (contracts/billing.ts); absent for a free model. */
  quote?: number;
  /** True when the quote was taken from the tenant's creditBalance at create (refunds go back there). */
  reserved?: boolean;
  /**
   * The UTC month (`YYYY-MM`) whose tenant spend counter (`spentThisMonth`) the quote was added to at
   * create; absent when the tenant had no monthly cap. A refund gives the headroom back only while the
   * tenant's counter is still for this month.
   */
  spendMonth?: string;
  /** Set by the terminal write, exactly once: millicredits charged and refunded (quote = charge + refund). */
  charge?: number;
  refund?: number;
  settlement?: SettlementState;
}

/** The public form of a stored preview: the image as a data URI. */
export function toPublicPreview(preview: JobPreviewRecord): JobPreview {
  return {
    step: preview.step,
    total_steps: preview.totalSteps,
    image: `data:${preview.mime};base64,${preview.data}`,
    width: preview.width,
    height: preview.height,
  };
}

/** Jobs are kept for 30 days after creation. */
export const JOB_RETENTION_SECONDS = 30 * 24 * 3600;

/** The next event of a job (its id follows the events already recorded). */
export function nextEvent(
  record: Pick<JobRecord, 'jobId' | 'events'>,
  type: EventType,
  data: Record<string, unknown>,
  now = Date.now(),
): JobEvent {
  return {
    id: eventId(record.jobId, record.events.length),
    type,
    generation_id: record.jobId,
    created_at: new Date(now).toISOString(),
    data,
  };
}

export interface TenantRecord {
  tenantId: string;
  name: string;
  createdAt: number;
  /** Standard Webhooks secrets (`whsec_…`); the first is current, more than one while rotating. */
  webhookSecret?: string;
  /** A previous secret still signing during a rotation (deliveries carry both signatures). */
  webhookSecretPrevious?: string;
  /**
   * Prepaid balance in millicredits. Absent: no prepaid balance is enforced (jobs run, charges are
   * still recorded on the jobs); present: every create reserves its quote from it and is refused
   * (402) when the balance is short. Never negative.
   */
  creditBalance?: number;
  /**
   * Monthly spend cap in millicredits (UTC months). Absent: no cap. Present: every create adds its
   * quote to `spentThisMonth` in the same conditional write that checks `spent + quote <= cap` (402
   * `spend_cap_exceeded` otherwise); the counter restarts at the first create of a new month.
   */
  monthlySpendCap?: number;
  /** The UTC month (`YYYY-MM`) `spentThisMonth` counts; see spendMonthOf. */
  spendMonth?: string;
  /** Millicredits reserved this month under the cap (quotes at create, less refunds at settlement). */
  spentThisMonth?: number;
  /** Job ids whose refund was applied to creditBalance but not yet confirmed on the job. */
  pendingRefunds?: Set<string>;
  /**
   * Credit reservations taken at create whose job item is not yet confirmed written
   * (`reservationMarker`); the reconciler refunds those whose job never appeared.
   */
  openReservations?: Set<string>;
}

export const KEY_SCOPES = ['generate', 'read', 'admin'] as const;
export type KeyScope = (typeof KEY_SCOPES)[number];

export interface KeyRecord {
  keyId: string;
  tenantId: string;
  /** hex SHA-256 of the secret part. */
  secretHash: string;
  scopes: KeyScope[];
  name: string;
  createdAt: number;
  revokedAt?: number;
  /** Epoch ms of a recent use; written at most once per few minutes per key (not per request). */
  lastUsedAt?: number;
  /** Per-key limits; absent means the deployment default (see contracts/key-limits.ts). */
  requestsPerMinute?: number;
  concurrentJobs?: number;
}
