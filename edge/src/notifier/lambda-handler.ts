/**
 * The SQS event source handler of the notifier Lambda, with partial batch responses
 * (ReportBatchItemFailures): only the messages whose handling threw come back to the queue.
 */
import { handleEventMessage, type NotifierDeps } from './notifier.js';

export interface SqsRecord {
  messageId: string;
  body: string;
}
export interface SqsEvent {
  Records: SqsRecord[];
}
export interface SqsBatchResponse {
  batchItemFailures: { itemIdentifier: string }[];
}

export function createNotifierHandler(deps: NotifierDeps) {
  return async (event: SqsEvent): Promise<SqsBatchResponse> => {
    const results = await Promise.allSettled(event.Records.map((r) => handleEventMessage(r.body, deps)));
    const batchItemFailures: SqsBatchResponse['batchItemFailures'] = [];
    results.forEach((result, i) => {
      if (result.status === 'rejected') {
        deps.logger?.log('error', 'events message failed; SQS will retry it', {
          message_id: event.Records[i]!.messageId,
          error: result.reason,
        });
        batchItemFailures.push({ itemIdentifier: event.Records[i]!.messageId });
      }
    });
    return { batchItemFailures };
  };
}
