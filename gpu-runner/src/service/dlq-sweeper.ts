/**
 * The dead-letter queue sweeper. A message lands in the DLQ after `maxReceives` receives; normally
 * the runner already failed the job on its last attempt, but a runner killed during that attempt
 * never could. The sweeper reads the DLQ periodically and fails any job still non-terminal (and
 * not under another runner's live lease) with `max_attempts_exceeded`.
 *
 * Messages are kept, not deleted, so operators can inspect and redrive them: each one is received
 * with the longest visibility timeout SQS allows (12 h), so a sweep touches it at most twice a day
 * until the DLQ's retention period drops it. A job still under a live lease (a duplicate message
 * of a job that is running) is looked at again when that lease ends.
 */
import {
  ChangeMessageVisibilityCommand,
  type Message,
  ReceiveMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { EnvelopeError, type SigningKeys, verifyEnvelope } from '@sd3/shared';
import type { JobStore } from './job-store.js';
import { errorFields, type Logger } from './logger.js';
import type { RunnerEvents } from './queue-consumer.js';

export interface DlqSweeperOptions {
  sqs: SQSClient;
  dlqUrl: string;
  store: JobStore;
  signingKeys: SigningKeys;
  maxReceives: number;
  intervalMs: number;
  hideSeconds: number;
  events: RunnerEvents;
  log: Logger;
}

/** Messages per sweep at most, so one sweep never runs long. */
const MAX_PER_SWEEP = 100;
/** When a job update fails, look at the message again after this long. */
const RETRY_SECONDS = 60;

export type SweepResult = 'failed' | 'terminal' | 'held' | 'missing' | 'unverifiable' | 'error';

export class DlqSweeper {
  private timer: NodeJS.Timeout | undefined;
  private sweeping: Promise<number> | null = null;
  private readonly stopper = new AbortController();

  constructor(private readonly options: DlqSweeperOptions) {}

  start(): void {
    const tick = () => {
      if (this.stopper.signal.aborted) return;
      this.sweeping ??= this.sweepOnce()
        .catch((error: unknown) => {
          this.options.events.emit('error', { where: 'dlq', error });
          return 0;
        })
        .finally(() => {
          this.sweeping = null;
        });
    };
    tick();
    this.timer = setInterval(tick, this.options.intervalMs);
  }

  async stop(): Promise<void> {
    this.stopper.abort();
    clearInterval(this.timer);
    await this.sweeping;
  }

  /** One pass over the visible DLQ messages; returns how many were looked at. */
  async sweepOnce(): Promise<number> {
    const { sqs, dlqUrl, hideSeconds } = this.options;
    let seen = 0;
    while (seen < MAX_PER_SWEEP && !this.stopper.signal.aborted) {
      const out = await sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: dlqUrl,
          MaxNumberOfMessages: 10,
          WaitTimeSeconds: 0,
          VisibilityTimeout: hideSeconds,
          MessageSystemAttributeNames: ['ApproximateReceiveCount'],
          MessageAttributeNames: ['All'],
        }),
        { abortSignal: this.stopper.signal },
      );
      const messages = out.Messages ?? [];
      if (messages.length === 0) break;
      for (const message of messages) await this.sweepMessage(message);
      seen += messages.length;
    }
    return seen;
  }

  private async sweepMessage(message: Message): Promise<SweepResult> {
    const { store, signingKeys, maxReceives, log, events } = this.options;
    const mlog = log.child({ message_id: message.MessageId, queue: 'dlq' });
    let jobId: string | undefined;
    try {
      jobId = (await verifyEnvelope(message.Body ?? '', signingKeys)).jobId;
    } catch (err) {
      // Expiry is checked after the signature: an expired envelope is authentic, and DLQ
      // messages are often past their expiry.
      if (err instanceof EnvelopeError && err.code === 'envelope_expired') jobId = err.jobId;
    }
    let result: SweepResult;
    if (!jobId) {
      mlog.warn('DLQ message without a verifiable envelope, left for inspection');
      result = 'unverifiable';
    } else {
      try {
        result = await store.failNonTerminal(jobId, {
          code: 'max_attempts_exceeded',
          message: `the job's message reached the dead-letter queue after ${maxReceives} receives`,
        });
        if (result === 'held') {
          const record = await store.get(jobId);
          const leftMs = (record?.leaseUntil ?? Date.now()) - Date.now();
          await this.changeVisibility(message, Math.max(1, Math.ceil(leftMs / 1000) + 1));
        }
      } catch (err) {
        mlog.warn('DLQ sweep could not update the job', { job_id: jobId, ...errorFields(err) });
        await this.changeVisibility(message, RETRY_SECONDS).catch(() => {});
        result = 'error';
      }
    }
    mlog.info('DLQ message swept', { job_id: jobId, result });
    events.emit('dlq_swept', { jobId, result });
    return result;
  }

  private async changeVisibility(message: Message, seconds: number): Promise<void> {
    await this.options.sqs.send(
      new ChangeMessageVisibilityCommand({
        QueueUrl: this.options.dlqUrl,
        ReceiptHandle: message.ReceiptHandle ?? '',
        VisibilityTimeout: Math.min(43_200, seconds),
      }),
    );
  }
}
