/**
 * The notifier on AWS services: deps from the environment (jobs and tenants tables, the events
 * queue, endpoint overrides for the emulators) and the polling loop the local stack runs (the
 * Lambda gets its messages from the SQS event source instead, see adapters/aws-notifier-lambda.ts).
 */
import { DeleteMessageCommand, ReceiveMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { ENV, type JobRecord, NOTIFIER_ENV, TABLES, type TenantRecord } from '@sd3/shared';
import { z } from 'zod';
import { createSdkClients, SDK_CLIENT_ENV } from '../adapters/aws/sdk-clients.js';
import { SqsEventPublisher } from '../adapters/aws/sqs-event-publisher.js';
import { describeIssues } from '../deps.js';
import type { Logger } from '../logger.js';
import { DynamoDeliveryStore } from './delivery-store.js';
import { postWithNode, resolveWithDns } from './node-post.js';
import { handleEventMessage, type NotifierDeps } from './notifier.js';

const EnvSchema = z.object({
  [ENV.JOBS_TABLE]: z.string().min(1),
  [ENV.TENANTS_TABLE]: z.string().min(1),
  [ENV.EVENTS_QUEUE_URL]: z.string().regex(/^https?:\/\/\S+$/, { message: 'must be a queue URL' }),
  [NOTIFIER_ENV.RETRY_SCHEDULE_MS]: z
    .string()
    .transform((text, ctx) => {
      const parsed = z
        .array(
          z
            .number()
            .int()
            .min(0)
            .max(7 * 24 * 3600_000),
        )
        .max(20)
        .safeParse(
          (() => {
            try {
              return JSON.parse(text);
            } catch {
              return null;
            }
          })(),
        );
      if (!parsed.success) {
        ctx.addIssue({ code: 'custom', message: 'must be a JSON array of at most 20 delays in ms' });
        return z.NEVER;
      }
      return parsed.data;
    })
    .optional(),
  [NOTIFIER_ENV.TIMEOUT_MS]: z
    .string()
    .regex(/^\d+$/, { message: 'must be a whole number of ms' })
    .transform(Number)
    .pipe(z.number().min(100).max(30_000))
    .optional(),
  [NOTIFIER_ENV.ALLOW_LOCAL_HTTP]: z.enum(['true', 'false']).optional(),
  ...SDK_CLIENT_ENV,
});

export interface AwsNotifier {
  deps: NotifierDeps;
  sqs: SQSClient;
  queueUrl: string;
  destroy(): void;
}

export function createAwsNotifier(
  env: Readonly<Record<string, string | undefined>>,
  overrides: Partial<NotifierDeps> = {},
): AwsNotifier {
  const parsed = EnvSchema.safeParse(env);
  if (!parsed.success) throw new Error(`invalid notifier environment:\n${describeIssues(parsed.error)}`);
  const e = parsed.data;
  const clients = createSdkClients(e);
  const { doc, sqs } = clients;
  const queueUrl = e[ENV.EVENTS_QUEUE_URL];
  const publisher = new SqsEventPublisher(sqs, queueUrl);
  const jobsTable = e[ENV.JOBS_TABLE];
  const tenantsTable = e[ENV.TENANTS_TABLE];
  const retry = e[NOTIFIER_ENV.RETRY_SCHEDULE_MS];
  const timeout = e[NOTIFIER_ENV.TIMEOUT_MS];
  const deps: NotifierDeps = {
    jobs: {
      async get(jobId) {
        const out = await doc.send(
          new GetCommand({
            TableName: jobsTable,
            Key: { [TABLES.jobs.partitionKey]: jobId },
            ConsistentRead: true,
          }),
        );
        return (out.Item as JobRecord | undefined) ?? null;
      },
    },
    tenants: {
      async get(tenantId) {
        const out = await doc.send(
          new GetCommand({ TableName: tenantsTable, Key: { [TABLES.tenants.partitionKey]: tenantId } }),
        );
        return (out.Item as TenantRecord | undefined) ?? null;
      },
    },
    deliveries: new DynamoDeliveryStore(doc, jobsTable),
    requeue: (message, delaySeconds) => publisher.publish(message, delaySeconds),
    resolve: resolveWithDns,
    post: postWithNode,
    ...(retry ? { retryScheduleMs: retry } : {}),
    ...(timeout !== undefined ? { timeoutMs: timeout } : {}),
    ...(e[NOTIFIER_ENV.ALLOW_LOCAL_HTTP] === 'true' ? { allowLocalHttp: true } : {}),
    ...overrides,
  };
  return {
    deps,
    sqs,
    queueUrl,
    destroy: clients.destroy,
  };
}

export interface NotifierLoop {
  /** Stops receiving and waits for the messages in hand. */
  stop(): Promise<void>;
}

/**
 * Long-polls the events queue and handles messages concurrently; a handled message is deleted, one
 * whose handling threw stays and comes back after the visibility timeout.
 */
export function startNotifierLoop(options: {
  sqs: SQSClient;
  queueUrl: string;
  deps: NotifierDeps;
  waitTimeSeconds?: number;
  logger?: Logger;
}): NotifierLoop {
  const { sqs, queueUrl, deps } = options;
  const log = options.logger ?? deps.logger;
  const abort = new AbortController();
  let stopped = false;
  const inHand = new Set<Promise<void>>();
  const handle = async (body: string, receipt: string) => {
    try {
      await handleEventMessage(body, deps);
      await sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: receipt }));
    } catch (err) {
      log?.log('error', 'events message failed; it will be retried', { error: err });
    }
  };
  const running = (async () => {
    while (!stopped) {
      try {
        const out = await sqs.send(
          new ReceiveMessageCommand({
            QueueUrl: queueUrl,
            MaxNumberOfMessages: 10,
            WaitTimeSeconds: options.waitTimeSeconds ?? 1,
            VisibilityTimeout: 60,
          }),
          { abortSignal: abort.signal },
        );
        for (const m of out.Messages ?? []) {
          if (!m.Body || !m.ReceiptHandle) continue;
          const p = handle(m.Body, m.ReceiptHandle).finally(() => inHand.delete(p));
          inHand.add(p);
        }
      } catch (err) {
        if (stopped) break;
        log?.log('error', 'events queue receive failed', { error: err });
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  })();
  return {
    async stop() {
      stopped = true;
      abort.abort();
      await running;
      await Promise.all([...inHand]);
    },
  };
}
