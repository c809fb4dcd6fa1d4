/**
 * Money: per-model prices, quotes and settlement amounts. Every amount is an integer number of
 * millicredits (1 credit = 1000 millicredits), so sums and refunds are exact; the API shows them as
 * decimal strings of credits ("1.250").
 *
 * Quote = max(minimum_millicredits, ceil(millicredits_per_megapixel_step × width × height × steps × n / 1e6)),
 * computed with BigInt (no float rounding). The request's `steps` is what is priced (image-to-image
 * too). Settlement of a reserved quote:
 *   succeeded                 -> charge = quote
 *   failed (any cause)        -> charge = 0 (full refund)
 *   canceled while queued     -> charge = 0
 *   canceled while running    -> charge = floor(quote × steps_completed / steps) (rounded down, in
 *                                the customer's favour), the rest refunded
 */
import { z } from 'zod';

export const MILLICREDITS_PER_CREDIT = 1000;

export const ModelPriceSchema = z
  .object({
    millicredits_per_megapixel_step: z
      .number()
      .int()
      .min(0)
      .max(1_000_000)
      .describe('Price of one megapixel for one denoising step, in millicredits (1/1000 credit)'),
    minimum_millicredits: z.number().int().min(0).max(1_000_000_000).optional(),
  })
  .meta({ id: 'ModelPrice' });
export type ModelPrice = z.infer<typeof ModelPriceSchema>;

/** The quote of a generation in millicredits (see the formula above). */
export function quoteMillicredits(
  price: ModelPrice,
  p: { width: number; height: number; steps: number; n: number },
): number {
  const product =
    BigInt(price.millicredits_per_megapixel_step) *
    BigInt(p.width) *
    BigInt(p.height) *
    BigInt(p.steps) *
    BigInt(p.n);
  const perMillion = 1_000_000n;
  const ceil = (product + perMillion - 1n) / perMillion;
  const quote = Number(ceil);
  return Math.max(quote, price.minimum_millicredits ?? 0);
}

/** What a terminal job is charged, out of its quote (millicredits). */
export function chargeMillicredits(
  outcome: 'succeeded' | 'failed' | 'canceled',
  quote: number,
  stepsCompleted = 0,
  totalSteps = 1,
): number {
  if (outcome === 'succeeded') return quote;
  if (outcome === 'failed' || stepsCompleted <= 0 || totalSteps <= 0) return 0;
  const done = Math.min(stepsCompleted, totalSteps);
  return Number((BigInt(quote) * BigInt(done)) / BigInt(totalSteps));
}

/** The UTC month key (`YYYY-MM`) of an epoch-ms time: the period of a tenant's monthly spend cap. */
export function spendMonthOf(epochMs: number): string {
  return new Date(epochMs).toISOString().slice(0, 7);
}

/** "1.250" for 1250 millicredits; exact for any safe integer. */
export function formatCredits(millicredits: number): string {
  const sign = millicredits < 0 ? '-' : '';
  const abs = Math.abs(millicredits);
  const whole = Math.floor(abs / MILLICREDITS_PER_CREDIT);
  const frac = String(abs % MILLICREDITS_PER_CREDIT).padStart(3, '0');
  return `${sign}${whole}.${frac}`;
}

/** Parses "12", "12.5", "0.001" credits into millicredits; null when malformed or finer than 0.001. */
export function parseCredits(text: string): number | null {
  const m = /^(\d{1,12})(?:\.(\d{1,3}))?$/.exec(text.trim());
  if (!m) return null;
  return Number(m[1]) * MILLICREDITS_PER_CREDIT + Number((m[2] ?? '').padEnd(3, '0'));
}

export const JobCostSchema = z
  .object({
    quote: z.string().describe('Credits reserved at create, decimal string'),
    charge: z.string().nullable().describe('Credits charged once the job finished; null before'),
    currency: z.literal('credits'),
  })
  .meta({ id: 'GenerationCost' });
export type JobCost = z.infer<typeof JobCostSchema>;

/**
 * Job-record settlement state. `pending`: the terminal write recorded `charge` and `refund` but the
 * refund (if any) and the usage-ledger item are not yet confirmed; whoever sees it (the finishing writer, a later read, a
 * redelivered message) completes it with the idempotent refund protocol (billing doc in edge/README).
 */
export const SETTLEMENT_STATES = ['pending', 'done'] as const;
export type SettlementState = (typeof SETTLEMENT_STATES)[number];

/** Tenant attribute holding the job ids whose refund was applied but not yet confirmed on the job. */
export const TENANT_PENDING_REFUNDS = 'pendingRefunds';

/**
 * Tenant attribute (string set) holding the open credit reservations: added in the same conditional
 * write that takes the quote, deleted once the job item exists (or by the refund of a reservation
 * whose job never appeared, in one write conditional on the marker, so it happens once).
 */
export const TENANT_OPEN_RESERVATIONS = 'openReservations';

/** What a reservation marker records: enough to give the quote back without the job. */
export interface ReservationMarker {
  /** Epoch ms of the reservation. */
  at: number;
  jobId: string;
  /** Millicredits. */
  quote: number;
  fromBalance: boolean;
  spendMonth?: string;
}

/** `<at>#<jobId>#<quote>#<b|->#<spendMonth|->`. */
export function reservationMarker(m: ReservationMarker): string {
  return `${m.at}#${m.jobId}#${m.quote}#${m.fromBalance ? 'b' : '-'}#${m.spendMonth ?? '-'}`;
}

/** The marker's fields, or null for a string that is not one. */
export function parseReservationMarker(text: string): ReservationMarker | null {
  const m = /^(\d{1,15})#([A-Za-z0-9_-]{1,100})#(\d{1,15})#([b-])#(\d{4}-\d{2}|-)$/.exec(text);
  if (!m) return null;
  return {
    at: Number(m[1]),
    jobId: m[2]!,
    quote: Number(m[3]),
    fromBalance: m[4] === 'b',
    ...(m[5] !== '-' ? { spendMonth: m[5]! } : {}),
  };
}

/**
 * The attributes a terminal write sets on a job with a quote (none for a free job): the charge, the
 * refund, and `pending` when a refund must still go back to the tenant's balance.
 */
export function settlementFields(
  job: { quote?: number; reserved?: boolean },
  outcome: 'succeeded' | 'failed' | 'canceled',
  stepsCompleted = 0,
  totalSteps = 1,
): { charge: number; refund: number; settlement: SettlementState } | Record<string, never> {
  if (job.quote === undefined) return {};
  const charge = chargeMillicredits(outcome, job.quote, stepsCompleted, totalSteps);
  const refund = job.quote - charge;
  // Pending until the refund (if any) is back on the balance and the usage item is written.
  return { charge, refund, settlement: 'pending' };
}

/** The public cost of a job record (also carried by terminal events as `data.cost`). */
export function jobCost(job: { quote?: number; charge?: number }): JobCost | null {
  if (job.quote === undefined) return null;
  return {
    quote: formatCredits(job.quote),
    charge: job.charge === undefined ? null : formatCredits(job.charge),
    currency: 'credits',
  };
}

/** `{ cost }` for a terminal event's data (the exact charge), or nothing for a free job. */
export function terminalCostData(
  job: { quote?: number; reserved?: boolean },
  outcome: 'succeeded' | 'failed' | 'canceled',
  stepsCompleted = 0,
  totalSteps = 1,
): { cost?: JobCost } {
  const fields = settlementFields(job, outcome, stepsCompleted, totalSteps);
  if (!('charge' in fields) || job.quote === undefined) return {};
  return {
    cost: { quote: formatCredits(job.quote), charge: formatCredits(fields.charge), currency: 'credits' },
  };
}

/** One usage-ledger item: written once per settled job (the key is derived from the job, so a repeat is a no-op). */
export interface UsageRecord {
  tenantId: string;
  /** `<completedAt, 13 digits>#<jobId>`: sorts by time, unique per job. */
  sk: string;
  jobId: string;
  /** ISO 8601 time of the settlement (the job's completion). */
  ts: string;
  keyId: string;
  user?: string;
  model: string;
  status: string;
  images: number;
  megapixels: number;
  steps: number;
  /** Millicredits. */
  quote: number;
  charge: number;
}

export function usageSortKey(completedAt: number, jobId: string): string {
  return `${String(completedAt).padStart(13, '0')}#${jobId}`;
}

/** The ledger item of a settled job (null for a job without a quote or not yet finished). */
export function usageRecordOf(job: {
  jobId: string;
  tenantId: string;
  keyId: string;
  user?: string;
  model: string;
  status: string;
  completedAt?: number;
  params: { width: number; height: number; steps: number };
  outputs?: { width: number; height: number }[];
  progress?: { step: number };
  quote?: number;
  charge?: number;
}): UsageRecord | null {
  if (job.quote === undefined || job.charge === undefined || job.completedAt === undefined) return null;
  const outputs = job.outputs ?? [];
  const pixels = outputs.reduce((sum, o) => sum + o.width * o.height, 0);
  const steps = job.status === 'succeeded' ? job.params.steps : (job.progress?.step ?? 0);
  return {
    tenantId: job.tenantId,
    sk: usageSortKey(job.completedAt, job.jobId),
    jobId: job.jobId,
    ts: new Date(job.completedAt).toISOString(),
    keyId: job.keyId,
    ...(job.user !== undefined ? { user: job.user } : {}),
    model: job.model,
    status: job.status,
    images: outputs.length,
    megapixels: Math.round(pixels / 100) / 1e4,
    steps,
    quote: job.quote,
    charge: job.charge,
  };
}
