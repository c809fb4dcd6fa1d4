/**
 * The SQS long-polling loop: one message at a time, handed to a handler that owns it until it
 * returns. The loop knows nothing about jobs or tensors. `stop()` aborts the long poll in flight
 * (the SDK call takes an AbortSignal) and lets the message in hand finish. Receive errors (the
 * queue or the emulator unreachable) are retried with exponential backoff, so the loop reconnects.
 */
import { EventEmitter } from 'node:events';
import { type Message, ReceiveMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';

/** What the runner reports, for tests, metrics and logs. */
export interface RunnerEventMap {
  message_received: [{ messageId: string; receiveCount: number }];
  job_started: [{ jobId: string; messageId: string; attempt: number }];
  job_progress: [{ jobId: string; step: number; totalSteps: number }];
  /** Visibility extended and lease renewed (each false when that call failed or the lease was lost). */
  job_heartbeat: [{ jobId: string; visibilityExtended: boolean; leaseRenewed: boolean }];
  job_finished: [{ jobId: string; messageId: string; outcome: MessageOutcome; durationMs: number }];
  dlq_swept: [{ jobId: string | undefined; result: string }];
  error: [{ where: string; error: unknown }];
}

export type MessageOutcome =
  /** Finished (succeeded, failed permanently or canceled) and deleted. */
  | 'completed'
  /** Forged, altered, expired or misrouted: job failed when readable, message deleted. */
  | 'rejected'
  /** The job was already terminal or gone: message deleted, nothing done. */
  | 'duplicate'
  /** Another runner holds a live lease: message left for later. */
  | 'held'
  /** A retryable failure: message released for redelivery. */
  | 'retry'
  /** A retryable failure on the last receive: job failed, message left to go to the DLQ. */
  | 'exhausted'
  /** Given back on shutdown: lease and message released at once. */
  | 'released'
  /** Another runner took the job over (this runner's lease lapsed). */
  | 'lost';

export class RunnerEvents extends EventEmitter<RunnerEventMap> {}

export interface QueueConsumerOptions {
  sqs: SQSClient;
  queueUrl: string;
  waitTimeSeconds: number;
  visibilityTimeoutSeconds: number;
  handleMessage: (message: Message) => Promise<void>;
  events: RunnerEvents;
  /** Reconnect backoff after a failed receive. */
  backoffMinMs?: number;
  backoffMaxMs?: number;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

export class QueueConsumer {
  private readonly stopper = new AbortController();
  private loop: Promise<void> | null = null;

  constructor(private readonly options: QueueConsumerOptions) {}

  get stopped(): boolean {
    return this.stopper.signal.aborted;
  }

  /** Starts the loop; the promise settles when it has stopped and the last message is handled. */
  start(): Promise<void> {
    this.loop ??= this.run();
    return this.loop;
  }

  /** Stops receiving; resolves once the message in hand (if any) has been handled. */
  async stop(): Promise<void> {
    this.stopper.abort();
    await this.loop;
  }

  private async run(): Promise<void> {
    const { sqs, queueUrl, events } = this.options;
    const minMs = this.options.backoffMinMs ?? 200;
    const maxMs = this.options.backoffMaxMs ?? 10_000;
    let backoff = minMs;
    const signal = this.stopper.signal;
    while (!signal.aborted) {
      let messages: Message[];
      try {
        const out = await sqs.send(
          new ReceiveMessageCommand({
            QueueUrl: queueUrl,
            MaxNumberOfMessages: 1,
            WaitTimeSeconds: this.options.waitTimeSeconds,
            VisibilityTimeout: this.options.visibilityTimeoutSeconds,
            MessageSystemAttributeNames: ['ApproximateReceiveCount'],
            MessageAttributeNames: ['All'],
          }),
          { abortSignal: signal },
        );
        messages = out.Messages ?? [];
        backoff = minMs;
      } catch (error) {
        if (signal.aborted) break;
        events.emit('error', { where: 'receive', error });
        await sleep(backoff, signal);
        backoff = Math.min(maxMs, backoff * 2);
        continue;
      }
      for (const message of messages) {
        events.emit('message_received', {
          messageId: message.MessageId ?? '',
          receiveCount: Number(message.Attributes?.ApproximateReceiveCount ?? 1),
        });
        try {
          await this.options.handleMessage(message);
        } catch (error) {
          // The handler settles its own failures; reaching here is a bug, never a reason to stop.
          events.emit('error', { where: 'handle', error });
        }
      }
    }
  }
}
