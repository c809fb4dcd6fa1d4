/**
 * Sweeps 1 and 2: jobs whose queue message vanished. A job is a candidate when it is queued, or
 * running under a lease that lapsed, and nothing was sent for it for `staleAfterMs` (its last
 * send: `enqueuedAt`, or `createdAt` when the edge died before recording one).
 *
 * Flood guard: a long legitimate backlog has old queued jobs whose messages are all there. So per
 * model the sweep compares the jobs that should hold a message (queued + running) with the
 * messages the queue holds (visible + in flight + delayed) and sends at most that deficit, oldest
 * first. Nothing missing: nothing sent, whatever the jobs' age. SQS counts are approximate (they
 * can lag about a minute), so a deficit may be overstated right after a burst of creates: the cost
 * is a duplicate message, which the runner's conditional claim makes harmless.
 *
 * Each resend is counted on the job (conditional on the count read, so concurrent reconcilers send
 * once per round) and restarts its staleness clock. After `maxResends` the job is failed with
 * `message_lost`, refunded through the settlement protocol and its failed event published.
 */
import { type JobRecord, nextEvent, terminalCostData } from '@sd3/shared';
import { buildJobMessage } from '../services/job-message.js';
import type { ReconcilerDeps } from './context.js';
import { publishEvent } from './job-events.js';
import type { OpenJob } from './open-jobs.js';
import type { ReconcileReport } from './report.js';

const lastSent = (j: { enqueuedAt?: number; createdAt: number }) => j.enqueuedAt ?? j.createdAt;

/** Whether the record as read has gone without a message for longer than the threshold. */
export function isLost(record: JobRecord, cutoff: number): boolean {
  if (lastSent(record) >= cutoff) return false;
  if (record.status === 'queued') return true;
  return record.status === 'running' && (record.leaseUntil === undefined || record.leaseUntil < cutoff);
}

export async function sweepLostMessages(
  deps: ReconcilerDeps,
  model: string,
  open: OpenJob[],
  report: ReconcileReport,
): Promise<void> {
  const now = deps.clock.now();
  const cutoff = now - deps.config.staleAfterMs;
  const active = open.filter((j) => j.status === 'queued' || j.status === 'running');
  const old = active.filter((j) => lastSent(j) < cutoff).sort((a, b) => lastSent(a) - lastSent(b));
  if (old.length === 0) return;
  let deficit = active.length - (await deps.queueDepth(model));
  for (const entry of old) {
    if (deficit <= 0) break;
    try {
      const record = await deps.jobs.get(entry.jobId);
      if (!record || !isLost(record, cutoff)) continue;
      deficit--;
      if ((record.resends ?? 0) >= deps.config.maxResends) await failLost(deps, record, report);
      else await resend(deps, record, report);
    } catch (err) {
      report.errors++;
      deps.logger.log('error', 'reconciler could not handle a job without a message', {
        job_id: entry.jobId,
        error: err,
      });
    }
  }
}

async function resend(deps: ReconcilerDeps, record: JobRecord, report: ReconcileReport): Promise<void> {
  const now = deps.clock.now();
  if (!(await deps.jobs.claimResend(record, now))) return;
  const message = await buildJobMessage(deps, record, now);
  const sent = await deps.queue.send(record.model, message);
  if (record.status === 'queued') report.queuedResent++;
  else report.runningResent++;
  deps.logger.log('warn', 'job message lost; sent again', {
    job_id: record.jobId,
    status: record.status,
    resend: (record.resends ?? 0) + 1,
    message_id: sent.messageId,
  });
  await deps.jobs.recordMessageId(record.jobId, sent.messageId).catch((err: unknown) => {
    deps.logger.log('warn', 'could not record the resent message id', { job_id: record.jobId, error: err });
  });
}

async function failLost(deps: ReconcilerDeps, record: JobRecord, report: ReconcileReport): Promise<void> {
  const now = deps.clock.now();
  const error = {
    code: 'message_lost',
    message: `the job's queue message was lost ${(record.resends ?? 0) + 1} times; submit it again`,
  };
  const event = nextEvent(
    record,
    'generation.failed',
    { status: 'failed', error, ...terminalCostData(record, 'failed') },
    now,
  );
  const failed = await deps.jobs.failLost(record, error, event, now);
  if (!failed) return;
  report.lostFailed++;
  deps.logger.log('error', 'job message lost too often; job failed and refunded', {
    job_id: record.jobId,
    resends: record.resends ?? 0,
  });
  await publishEvent(deps, failed, event);
  // A failure here leaves the settlement pending: the settlement sweep completes it.
  if (failed.settlement === 'pending') {
    await deps.billing.completeSettlement(failed).catch((err: unknown) => {
      deps.logger.log('error', 'could not complete the settlement', { job_id: record.jobId, error: err });
    });
  }
}
