/**
 * Sweep 5: terminal events that never reached the events queue (the send failed after the
 * terminal write). The delivery log lives in the job item (`deliveries`, keyed by event id; the
 * notifier creates an entry when it first claims an attempt), so a terminal event the webhook
 * wants with no entry after `staleAfterMs` was not received: it is sent again. A duplicate is
 * harmless (the notifier's claim lets one attempt run). Resends are counted on the job and spaced
 * by `staleAfterMs`; after `maxResends` the sweep gives up and logs an error.
 */
import { isTerminal, type JobEvent, type JobRecord } from '@sd3/shared';
import type { ReconcilerDeps } from './context.js';
import { publishEvent, wantsEvent } from './job-events.js';
import type { ReconcileReport } from './report.js';

export type EventState = 'logged' | 'not_wanted' | 'waiting' | 'resent' | 'given_up';

/** The job's terminal event (the last one recorded), if it has finished. */
export function terminalEvent(record: JobRecord): JobEvent | undefined {
  if (!isTerminal(record.status)) return undefined;
  return [...record.events].reverse().find((e) => /^generation\.(succeeded|failed|canceled)$/.test(e.type));
}

export async function resendLostEvent(
  deps: ReconcilerDeps,
  record: JobRecord,
  report: ReconcileReport,
): Promise<EventState> {
  const event = terminalEvent(record);
  if (!event || !wantsEvent(record, event)) return 'not_wanted';
  const deliveries = (record as { deliveries?: Record<string, unknown> }).deliveries;
  if (deliveries?.[event.id] !== undefined) return 'logged';
  const now = deps.clock.now();
  const since = record.eventResentAt ?? record.completedAt ?? record.updatedAt;
  if (now - since < deps.config.staleAfterMs) return 'waiting';
  if ((record.eventResends ?? 0) >= deps.config.maxResends) {
    deps.logger.log('error', 'terminal event never reached the notifier; giving up', {
      job_id: record.jobId,
      event_id: event.id,
      resends: record.eventResends ?? 0,
    });
    return 'given_up';
  }
  if (!(await deps.jobs.claimEventResend(record, now))) return 'waiting';
  if (!(await publishEvent(deps, record, event))) {
    report.errors++;
    return 'waiting';
  }
  report.eventsResent++;
  deps.logger.log('warn', 'terminal event sent again', { job_id: record.jobId, event_id: event.id });
  return 'resent';
}
