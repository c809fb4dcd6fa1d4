/**
 * Reading a tenant's job by id. Junk ids and other tenants' jobs answer the same 404, so ids can
 * neither be probed nor enumerated.
 */
import { isTerminal, type JobRecord, nextEvent, terminalCostData } from '@sd3/shared';
import type { ResolvedDeps } from '../deps.js';
import { ApiError } from '../errors/api-error.js';
import { publishJobEvent } from './job-events.js';
import { isJobId } from './job-id.js';

export function notFound(id: string): ApiError {
  return new ApiError('not_found', `no generation ${id.length <= 64 ? id : `${id.slice(0, 64)}…`} here`);
}

export const ENQUEUE_FAILED_MESSAGE = 'the job could not be handed to the queue; submit it again';

/** queued -> failed (enqueue_failed), re-reading on a lost race; returns the job as it now is. */
export async function failEnqueue(
  deps: ResolvedDeps,
  record: JobRecord,
  message: string,
): Promise<JobRecord> {
  let current: JobRecord | null = record;
  for (let attempt = 0; attempt < 5 && current && current.status === 'queued'; attempt++) {
    const now = deps.clock.now();
    const error = { code: 'enqueue_failed', message };
    const event = nextEvent(
      current,
      'generation.failed',
      { status: 'failed', error, ...terminalCostData(current, 'failed') },
      now,
    );
    const failed = await deps.jobs.failQueued(current, error, event, now);
    if (failed) {
      await publishJobEvent(deps, failed, event);
      return settle(deps, failed);
    }
    current = await deps.jobs.get(record.jobId);
  }
  return current ?? record;
}

/**
 * Completes a terminal job's pending refund (idempotent); never fails the caller's request: a
 * failure is logged and the next read or writer completes it.
 */
export async function settle(deps: ResolvedDeps, record: JobRecord): Promise<JobRecord> {
  if (record.settlement !== 'pending' || !deps.billing) return record;
  try {
    await deps.billing.completeSettlement(record);
    return { ...record, settlement: 'done' };
  } catch (err) {
    deps.logger.log('error', 'could not complete the settlement', { job_id: record.jobId, error: err });
    return record;
  }
}

/**
 * A read completes a terminal job's pending settlement. A non-terminal job is left alone: one whose
 * message was lost (the edge died between the write and the send, or SQS lost it) is re-sent or
 * failed with a refund by the reconciler, the one place that decides a message is gone.
 */
async function refresh(deps: ResolvedDeps, record: JobRecord): Promise<JobRecord> {
  return isTerminal(record.status) ? settle(deps, record) : record;
}

export async function loadJob(deps: ResolvedDeps, tenantId: string, id: string): Promise<JobRecord> {
  if (!isJobId(id)) throw notFound(id);
  const record = await deps.jobs.get(id);
  if (!record || record.tenantId !== tenantId) throw notFound(id);
  return refresh(deps, record);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Re-reads the job until it is terminal or `timeoutMs` passed; returns the last read. */
export async function waitForTerminal(
  deps: ResolvedDeps,
  record: JobRecord,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<JobRecord> {
  const deadline = Date.now() + timeoutMs;
  let current = record;
  while (!isTerminal(current.status) && !signal?.aborted) {
    const left = deadline - Date.now();
    if (left <= 0) break;
    await sleep(Math.min(deps.tuning.pollIntervalMs, left));
    current = await refresh(deps, (await deps.jobs.get(record.jobId)) ?? current);
  }
  return current;
}
