/**
 * How many messages a jobs queue holds (visible + in flight + delayed, SQS's approximate counts):
 * the flood guard of the lost-message sweep compares it with the jobs that should have one.
 */
import { GetQueueAttributesCommand, type SQSClient } from '@aws-sdk/client-sqs';

export type QueueDepth = (model: string) => Promise<number>;

export function sqsQueueDepth(sqs: SQSClient, queueUrls: Readonly<Record<string, string>>): QueueDepth {
  return async (model) => {
    const url = queueUrls[model];
    if (!url) throw new Error(`no jobs queue configured for model ${model}`);
    const out = await sqs.send(
      new GetQueueAttributesCommand({
        QueueUrl: url,
        AttributeNames: [
          'ApproximateNumberOfMessages',
          'ApproximateNumberOfMessagesNotVisible',
          'ApproximateNumberOfMessagesDelayed',
        ],
      }),
    );
    const a = out.Attributes ?? {};
    return (
      Number(a.ApproximateNumberOfMessages ?? 0) +
      Number(a.ApproximateNumberOfMessagesNotVisible ?? 0) +
      Number(a.ApproximateNumberOfMessagesDelayed ?? 0)
    );
  };
}
