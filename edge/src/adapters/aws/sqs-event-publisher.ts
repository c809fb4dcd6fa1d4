/** EventPublisher on the SQS events queue. */
import { SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { EventsQueueMessage } from '@sd3/shared';
import type { EventPublisher } from '../../ports/index.js';

export class SqsEventPublisher implements EventPublisher {
  constructor(
    private readonly sqs: SQSClient,
    private readonly queueUrl: string,
  ) {}

  async publish(message: EventsQueueMessage, delaySeconds = 0): Promise<void> {
    await this.sqs.send(
      new SendMessageCommand({
        QueueUrl: this.queueUrl,
        MessageBody: JSON.stringify(message),
        DelaySeconds: Math.min(900, Math.max(0, Math.round(delaySeconds))),
        MessageAttributes: {
          jobId: { DataType: 'String', StringValue: message.job_id },
          eventId: { DataType: 'String', StringValue: message.event.id },
        },
      }),
    );
  }
}
