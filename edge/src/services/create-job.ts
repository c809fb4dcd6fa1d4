/**
 * The create flow shared by POST /v1/generations and the OpenAI route:
 * validate -> normalize against the model -> (Idempotency-Key reservation) -> store the input
 * image -> write the job (conditional, queued) -> sign the envelope -> send it to the model's
 * queue, retrying with backoff. If the send keeps failing the job is marked failed
 * (enqueue_failed) and the caller gets a 503, so no job stays queued without a message.
 */
import {
  canonicalJson,
  formatCredits,
  type GenerationRequest,
  GenerationRequestSchema,
  JOB_RETENTION_SECONDS,
  type JobRecord,
  type KeyLimits,
  type KeyScope,
  type ModelInfo,
  type NormalizedParams,
  nextEvent,
  normalizeRequest,
  inputImageKey as objectKeyForInput,
  quoteMillicredits,
} from '@sd3/shared';
import type { ResolvedDeps } from '../deps.js';
import { ApiError } from '../errors/api-error.js';
import { fieldErrors } from '../http/field-errors.js';
import type { Reservation, ReservedFrom } from '../ports/index.js';
import { decodeInputImage, type InputImage } from './input-image.js';
import { failEnqueue } from './job-access.js';
import { publishJobEvent } from './job-events.js';
import { newJobId } from './job-id.js';
import { buildJobMessage } from './job-message.js';
import { acquireJobSlot, releaseJobSlot } from './job-slots.js';

export interface Caller {
  tenantId: string;
  keyId: string;
  scopes: KeyScope[];
  /** The key's limits in force (its own or the defaults); set by the auth middleware. */
  limits?: KeyLimits;
}

export interface ValidatedRequest {
  request: GenerationRequest;
  model: ModelInfo;
  params: NormalizedParams;
}

function randomSeed(): number {
  return crypto.getRandomValues(new Uint32Array(1))[0]!;
}

/**
 * Validates a request body: 400 listing every schema error (and an unknown model), then 422 for
 * what the chosen model cannot do. `rename` maps native field names onto the caller's (OpenAI).
 */
export function validateGenerationRequest(
  deps: ResolvedDeps,
  body: unknown,
  rename: Record<string, string> = {},
): ValidatedRequest {
  const parsed = GenerationRequestSchema.safeParse(body);
  const errors = parsed.success ? [] : fieldErrors(parsed.error, rename);
  const modelId = (body as { model?: unknown } | null)?.model;
  if (
    typeof modelId === 'string' &&
    !deps.modelsById.has(modelId) &&
    !errors.some((e) => e.field === 'model')
  ) {
    errors.push({
      field: rename['model'] ?? 'model',
      message: `unknown model ${JSON.stringify(modelId.slice(0, 100))}; GET /v1/models lists the served ones`,
    });
  }
  if (!parsed.success || errors.length > 0) throw ApiError.fields(errors);
  const model = deps.modelsById.get(parsed.data.model ?? deps.defaultModel)!;
  const normalized = normalizeRequest(parsed.data, model, randomSeed);
  if (normalized.errors.length > 0) {
    throw ApiError.fields(
      normalized.errors.map((e) => ({ field: rename[e.field] ?? e.field, message: e.message })),
      'unprocessable',
    );
  }
  return { request: parsed.data, model, params: normalized.params };
}

/** The dry_run answer: the price of this request on its model (credits, decimal strings). */
export function quoteOf(input: ValidatedRequest) {
  const quote = quoteFor(input.model, input.params);
  return {
    object: 'quote' as const,
    model: input.model.id,
    params: input.params,
    usage: {
      images: input.params.n,
      megapixels: (input.params.width * input.params.height) / 1e6,
      steps: input.params.steps,
    },
    quote: quote === undefined ? '0.000' : formatCredits(quote),
    currency: 'credits' as const,
  };
}

/** Millicredits, or undefined for a model without a price (free). */
export function quoteFor(model: ModelInfo, params: NormalizedParams): number | undefined {
  return model.price ? quoteMillicredits(model.price, params) : undefined;
}

async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export interface SubmitOptions {
  /** The Idempotency-Key header, already checked for shape. */
  idempotencyKey?: string;
  /** The parsed body as sent, hashed for the idempotency comparison. */
  rawBody?: unknown;
  /** Travels as a message attribute so the runner's logs carry it. */
  requestId?: string;
}

export interface Submitted {
  record: JobRecord;
  /** True when an earlier request with the same Idempotency-Key created this job. */
  replayed: boolean;
}

async function sendWithRetry(
  deps: ResolvedDeps,
  record: JobRecord,
  requestId: string | undefined,
): Promise<{ messageId: string } | { error: unknown }> {
  let lastError: unknown;
  const delays = deps.tuning.enqueueRetryDelaysMs;
  for (let attempt = 0; attempt <= delays.length; attempt++) {
    if (attempt > 0) await sleep(delays[attempt - 1]!);
    try {
      // Re-signed per attempt so a late retry still carries a full validity window.
      const message = await buildJobMessage(deps, record, deps.clock.now(), requestId);
      return await deps.queue.send(record.model, message);
    } catch (err) {
      lastError = err;
      deps.logger.log('warn', 'enqueue attempt failed', {
        job_id: record.jobId,
        attempt: attempt + 1,
        error: err,
      });
    }
  }
  return { error: lastError };
}

/** The job write failed and reading it back failed too: whether it exists is unknown. */
class JobWriteUnknownError extends Error {
  constructor(override readonly cause: unknown) {
    super('the job write failed and could not be read back', { cause });
  }
}

/**
 * Writes the new job. A write that DynamoDB applied although its answer was lost (a 500 or a
 * reset connection after the commit) fails the SDK's retry with "already exists", or fails
 * outright: the job is read back, and if it is this very record the create goes on.
 */
async function writeJob(deps: ResolvedDeps, record: JobRecord): Promise<void> {
  try {
    await deps.jobs.create(record);
  } catch (err) {
    let existing: JobRecord | null;
    try {
      existing = await deps.jobs.get(record.jobId);
    } catch {
      throw new JobWriteUnknownError(err);
    }
    const ours =
      existing !== null &&
      existing.tenantId === record.tenantId &&
      existing.keyId === record.keyId &&
      existing.createdAt === record.createdAt;
    if (ours) {
      deps.logger.log('warn', 'job write reported a failure but had been applied', {
        job_id: record.jobId,
        error: err,
      });
      return;
    }
    throw err;
  }
}

export async function submitGeneration(
  deps: ResolvedDeps,
  caller: Caller,
  input: ValidatedRequest,
  options: SubmitOptions = {},
): Promise<Submitted> {
  const { request, model, params } = input;
  // The image is checked before anything is reserved or written.
  const image: InputImage | undefined =
    request.image !== undefined ? await decodeInputImage(request.image) : undefined;
  const now = deps.clock.now();
  const jobId = newJobId(now);

  let scope: string | undefined;
  if (options.idempotencyKey !== undefined) {
    scope = `${caller.tenantId}:${options.idempotencyKey}`;
    const requestHash = await sha256Hex(canonicalJson(options.rawBody ?? null));
    const existing = await deps.idempotency.reserve(
      {
        scope,
        requestHash,
        jobId,
        createdAt: now,
        expiresAt: Math.floor(now / 1000) + deps.tuning.idempotencyTtlSeconds,
      },
      now,
    );
    if (existing) {
      if (existing.requestHash !== requestHash) {
        throw new ApiError(
          'idempotency_conflict',
          'this Idempotency-Key was already used with a different request body; use a new key',
        );
      }
      const job = await deps.jobs.get(existing.jobId);
      if (job && job.tenantId === caller.tenantId) return { record: job, replayed: true };
      throw new ApiError(
        'idempotency_conflict',
        'a request with this Idempotency-Key is still being processed; retry shortly',
        { headers: { 'retry-after': '1' } },
      );
    }
  }

  const releaseIdempotency = async () => {
    if (scope === undefined) return;
    try {
      await deps.idempotency.release(scope, jobId);
    } catch (err) {
      deps.logger.log('error', 'could not release idempotency key', { job_id: jobId, error: err });
    }
  };
  // After the idempotency check, so a replay does not take a slot; a refusal frees the key again.
  const concurrentJobs = caller.limits?.concurrentJobs ?? deps.keyLimits.concurrentJobs;
  try {
    await acquireJobSlot(deps, caller.keyId, concurrentJobs, jobId, now);
  } catch (err) {
    await releaseIdempotency();
    throw err;
  }
  const releaseSlotAndKey = async () => {
    await releaseIdempotency();
    await releaseJobSlot(deps, caller.keyId, jobId, now);
  };

  // Reserve the quote with one conditional write on the tenant, before the job exists: concurrent
  // creates can never take the balance below zero nor the month's spend above the cap.
  const quote = quoteFor(model, params);
  let reservedFrom: ReservedFrom | undefined;
  let marker: string | undefined;
  if (quote !== undefined && quote > 0 && deps.billing) {
    let reservation: Reservation;
    try {
      reservation = await deps.billing.reserve(caller.tenantId, quote, now, jobId);
    } catch (err) {
      await releaseSlotAndKey();
      throw err;
    }
    if (reservation.kind === 'insufficient') {
      await releaseSlotAndKey();
      throw new ApiError(
        'insufficient_credits',
        `this generation costs ${formatCredits(quote)} credits and the balance is ${formatCredits(reservation.balance)}`,
        { extensions: { quote: formatCredits(quote), balance: formatCredits(reservation.balance) } },
      );
    }
    if (reservation.kind === 'over_cap') {
      await releaseSlotAndKey();
      const left = Math.max(0, reservation.cap - reservation.spent);
      throw new ApiError(
        'spend_cap_exceeded',
        `this generation costs ${formatCredits(quote)} credits and would exceed the monthly spend cap of ` +
          `${formatCredits(reservation.cap)} credits (${formatCredits(reservation.spent)} spent in ${reservation.month} UTC, ` +
          `${formatCredits(left)} left)`,
        {
          extensions: {
            quote: formatCredits(quote),
            monthly_spend_cap: formatCredits(reservation.cap),
            spent_this_month: formatCredits(reservation.spent),
            month: reservation.month,
          },
        },
      );
    }
    if (reservation.kind === 'reserved') {
      marker = reservation.marker;
      reservedFrom = {
        fromBalance: reservation.fromBalance,
        ...(reservation.spendMonth !== undefined ? { spendMonth: reservation.spendMonth } : {}),
      };
    }
  }
  const release = releaseSlotAndKey;

  const inputKey = image ? objectKeyForInput(caller.tenantId, jobId, image.ext) : undefined;
  const base = { jobId, events: [] };
  const record: JobRecord = {
    jobId,
    tenantId: caller.tenantId,
    keyId: caller.keyId,
    model: model.id,
    status: 'queued',
    createdAt: now,
    updatedAt: now,
    params,
    ...(inputKey ? { inputImageKey: inputKey } : {}),
    ...(request.user !== undefined ? { user: request.user } : {}),
    ...(request.webhook_url !== undefined ? { webhookUrl: request.webhook_url } : {}),
    ...(request.webhook_events !== undefined ? { webhookEvents: request.webhook_events } : {}),
    ...(options.idempotencyKey !== undefined ? { idempotencyKey: options.idempotencyKey } : {}),
    events: [nextEvent(base, 'generation.queued', { status: 'queued', model: model.id }, now)],
    queuedModel: model.id,
    openModel: model.id,
    expiresAt: Math.floor(now / 1000) + JOB_RETENTION_SECONDS,
    ...(quote !== undefined ? { quote } : {}),
    ...(reservedFrom?.fromBalance ? { reserved: true } : {}),
    ...(reservedFrom?.spendMonth !== undefined ? { spendMonth: reservedFrom.spendMonth } : {}),
  };
  try {
    if (image && inputKey) await deps.objects.put(inputKey, image.bytes, image.contentType);
    await writeJob(deps, record);
  } catch (err) {
    if (err instanceof JobWriteUnknownError) {
      // The job may exist: keep the reservation (its marker) for the reconciler, which voids the
      // id or finds the job before it refunds, so the quote is neither lost nor given back twice.
      await release();
      throw new ApiError(
        'unavailable',
        `generation ${jobId} may or may not have been recorded; poll it by id (404: it was not, submit again)`,
        { headers: { 'retry-after': '5' }, extensions: { generation_id: jobId }, cause: err.cause },
      );
    }
    await release();
    // No job holds the reservation: give it back directly (once: the write is conditional on the
    // marker). If that fails too, the reconciler refunds the marker later.
    if (marker !== undefined) {
      await deps.billing?.release(caller.tenantId, marker).catch((e: unknown) => {
        deps.logger.log('error', 'could not release the credit reservation', { job_id: jobId, error: e });
      });
    }
    throw err;
  }
  // The job now carries the reservation; a marker left behind (this write failing) is dropped by
  // the reconciler, which finds the job.
  if (marker !== undefined) {
    await deps.billing?.confirm(caller.tenantId, marker).catch((e: unknown) => {
      deps.logger.log('warn', 'could not drop the reservation marker', { job_id: jobId, error: e });
    });
  }

  await publishJobEvent(deps, record, record.events[0]!);
  const sent = await sendWithRetry(deps, record, options.requestId);
  if ('error' in sent) {
    let failed: JobRecord;
    try {
      failed = await failEnqueue(deps, record, 'the job queue did not accept the job; submit it again');
    } catch (err) {
      // Neither queued nor failed: the job is recorded without a message. The reconciler queues it
      // again (or fails and refunds it), so the client must poll this id rather than resubmit.
      deps.logger.log('error', 'enqueue failed and the job could not be marked failed', {
        job_id: jobId,
        error: err,
        enqueue_error: sent.error,
      });
      throw new ApiError(
        'unavailable',
        `generation ${jobId} was recorded but not queued yet; it will be queued or failed and refunded automatically: poll it by id instead of submitting again`,
        { headers: { 'retry-after': '5' }, extensions: { generation_id: jobId }, cause: err },
      );
    }
    await release();
    deps.logger.log('error', 'enqueue failed; job marked failed', {
      job_id: jobId,
      status: failed.status,
      error: sent.error,
    });
    throw new ApiError('enqueue_failed', `generation ${jobId} could not be queued; try again shortly`, {
      headers: { 'retry-after': '5' },
      extensions: { generation_id: jobId },
    });
  }
  const enqueuedAt = deps.clock.now();
  try {
    await deps.jobs.markEnqueued(jobId, sent.messageId, enqueuedAt);
  } catch (err) {
    // The message is out; a runner can still claim the job. Only the bookkeeping is missing.
    deps.logger.log('error', 'could not record the message id', { job_id: jobId, error: err });
  }
  return { record: { ...record, enqueuedAt, messageId: sent.messageId }, replayed: false };
}
