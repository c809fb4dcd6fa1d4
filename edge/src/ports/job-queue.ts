/** The per-model jobs queues. The body is a serialized signed envelope. */
export interface QueueMessage {
  body: string;
  /** String message attributes (shared MESSAGE_ATTRIBUTES names). */
  attributes: Record<string, string>;
}

export interface JobQueue {
  /** Sends to the model's queue; throws when the send failed. */
  send(model: string, message: QueueMessage): Promise<{ messageId: string }>;
}
