/**
 * Sends the runner's job events (started, progress, finished) to the events queue, for the webhook
 * notifier. Fire-and-forget from the job store's point of view: the job record is the source of
 * truth, so a failed send is logged and the job goes on (nothing re-sends a lost event later).
 * Only events the job's webhook wants are sent; `flush` waits for the sends in flight at shutdown.
 */
import { SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { eventsQueueMessage, type JobEvent, type JobRecord, webhookWants } from '@sd3/shared';
import { errorFields, type Logger } from './logger.js';

export class EventPublisher {
  private readonly inFlight = new Set<Promise<void>>();

  constructor(
    private readonly sqs: SQSClient,
    private readonly queueUrl: string,
    private readonly log: Logger,
  ) {}

  /** Sends the event if the job's webhook wants it; never throws. */
  publish(record: JobRecord, event: JobEvent): void {
    if (!record.webhookUrl || !webhookWants(record.webhookEvents, event.type)) return;
    const sending = this.sqs
      .send(
        new SendMessageCommand({
          QueueUrl: this.queueUrl,
          MessageBody: JSON.stringify(eventsQueueMessage(record, event)),
          MessageAttributes: {
            jobId: { DataType: 'String', StringValue: record.jobId },
            eventId: { DataType: 'String', StringValue: event.id },
          },
        }),
      )
      .then(
        () => undefined,
        (err: unknown) =>
          this.log.error('could not send the event to the events queue', {
            job_id: record.jobId,
            event_id: event.id,
            ...errorFields(err),
          }),
      )
      .finally(() => this.inFlight.delete(sending));
    this.inFlight.add(sending);
  }

  async flush(): Promise<void> {
    await Promise.all([...this.inFlight]);
  }
}
