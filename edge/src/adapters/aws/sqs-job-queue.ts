/** JobQueue on SQS: one queue per model (SD3_JOB_QUEUES). */
import { SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { JobQueue, QueueMessage } from '../../ports/index.js';

export class SqsJobQueue implements JobQueue {
  constructor(
    private readonly sqs: SQSClient,
    private readonly queueUrls: Readonly<Record<string, string>>,
  ) {}

  async send(model: string, message: QueueMessage): Promise<{ messageId: string }> {
    const url = this.queueUrls[model];
    if (!url) throw new Error(`no jobs queue configured for model ${model}`);
    const out = await this.sqs.send(
      new SendMessageCommand({
        QueueUrl: url,
        MessageBody: message.body,
        MessageAttributes: Object.fromEntries(
          Object.entries(message.attributes).map(([k, v]) => [k, { DataType: 'String', StringValue: v }]),
        ),
      }),
    );
    if (!out.MessageId) throw new Error(`SQS returned no message id for model ${model}`);
    return { messageId: out.MessageId };
  }
}
