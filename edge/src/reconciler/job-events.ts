/**
 * Sending a job's event to the events queue from the reconciler: only what the job's webhook wants.
 * A failure is logged and left to the event sweep (the job stays on the open index until its
 * terminal event is in the delivery log).
 */
import { eventsQueueMessage, type JobEvent, type JobRecord, webhookWants } from '@sd3/shared';
import type { ReconcilerDeps } from './context.js';

export function wantsEvent(record: JobRecord, event: JobEvent): boolean {
  return Boolean(record.webhookUrl) && webhookWants(record.webhookEvents, event.type);
}

export async function publishEvent(
  deps: ReconcilerDeps,
  record: JobRecord,
  event: JobEvent,
): Promise<boolean> {
  if (!wantsEvent(record, event)) return false;
  try {
    await deps.events.publish(eventsQueueMessage(record, event));
    return true;
  } catch (err) {
    deps.logger.log('error', 'reconciler could not send the event to the events queue', {
      job_id: record.jobId,
      event_id: event.id,
      error: err,
    });
    return false;
  }
}
