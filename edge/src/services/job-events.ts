/**
 * Sends a job's event to the events queue after the edge recorded it (queued, canceled while
 * queued, enqueue_failed). The job record is the source of truth: a failed send is logged and the
 * request goes on (the reconciler sends a lost terminal event again; a lost queued event stays
 * lost). Only events the job's webhook wants are sent.
 */
import { eventsQueueMessage, type JobEvent, type JobRecord, webhookWants } from '@sd3/shared';
import type { ResolvedDeps } from '../deps.js';

export async function publishJobEvent(deps: ResolvedDeps, record: JobRecord, event: JobEvent): Promise<void> {
  if (!record.webhookUrl || !webhookWants(record.webhookEvents, event.type)) return;
  try {
    await deps.events.publish(eventsQueueMessage(record, event));
  } catch (err) {
    deps.logger.log('error', 'could not send the event to the events queue', {
      job_id: record.jobId,
      event_id: event.id,
      error: err,
    });
  }
}
