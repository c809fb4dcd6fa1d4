/** The events queue, as the edge and the notifier see it (the notifier delivers webhooks from it). */
import type { EventsQueueMessage } from '@sd3/shared';

export interface EventPublisher {
  /** Sends one message, invisible for `delaySeconds` (0-900); throws when the send failed. */
  publish(message: EventsQueueMessage, delaySeconds?: number): Promise<void>;
}

/** Used when no events queue is configured: nothing is sent. */
export const noEventPublisher: EventPublisher = { async publish() {} };
