/**
 * Creates what the CDK app creates in AWS, on the emulators: the tables (with the indexes named
 * in @sd3/shared), one jobs queue + DLQ per model, the events queue and the media bucket. Returns
 * the environment the edge and the runner read.
 */
import { CreateTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { CreateQueueCommand, GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import { ENV, MAX_RECEIVES, TABLES } from '@sd3/shared';
import type { Emulators } from './emulators.js';

export const LOCAL_CREDENTIALS = { accessKeyId: 'local', secretAccessKey: 'local' };
export const LOCAL_REGION = 'us-east-1';

export interface LocalResourceOptions {
  /** Prefix of every name, so several stacks can share emulators. */
  prefix?: string;
  models?: string[];
  /** Visibility timeout of the jobs queues (seconds); the runner heartbeats to extend it. */
  visibilityTimeoutSeconds?: number;
  maxReceives?: number;
}

export interface LocalResources {
  /** Environment variables (names from ENV) for the edge and the runner. */
  env: Record<string, string>;
  tables: {
    jobs: string;
    keys: string;
    tenants: string;
    idempotency: string;
    rateLimits: string;
    usage: string;
  };
  bucket: string;
  queues: Record<string, { url: string; dlqUrl: string }>;
  eventsQueueUrl: string;
}

export function localClients(em: Pick<Emulators, 'sqsEndpoint' | 's3Endpoint' | 'dynamodbEndpoint'>) {
  const common = { region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS };
  return {
    sqs: new SQSClient({ ...common, endpoint: em.sqsEndpoint }),
    s3: new S3Client({ ...common, endpoint: em.s3Endpoint, forcePathStyle: true }),
    dynamodb: new DynamoDBClient({ ...common, endpoint: em.dynamodbEndpoint }),
  };
}

export async function createLocalResources(
  em: Emulators,
  options: LocalResourceOptions = {},
): Promise<LocalResources> {
  const prefix = options.prefix ?? 'sd3';
  const { dynamodb } = localClients(em);
  const tables = {
    jobs: `${prefix}-jobs`,
    keys: `${prefix}-keys`,
    tenants: `${prefix}-tenants`,
    idempotency: `${prefix}-idempotency`,
    rateLimits: `${prefix}-rate-limits`,
    usage: `${prefix}-usage`,
  };
  const j = TABLES.jobs;
  await dynamodb.send(
    new CreateTableCommand({
      TableName: tables.jobs,
      BillingMode: 'PAY_PER_REQUEST',
      AttributeDefinitions: [
        { AttributeName: j.partitionKey, AttributeType: 'S' },
        { AttributeName: j.byTenantKey, AttributeType: 'S' },
        { AttributeName: j.byTenantSort, AttributeType: 'N' },
        { AttributeName: j.queuedKey, AttributeType: 'S' },
        { AttributeName: j.openKey, AttributeType: 'S' },
      ],
      KeySchema: [{ AttributeName: j.partitionKey, KeyType: 'HASH' }],
      GlobalSecondaryIndexes: [
        {
          IndexName: j.byTenantIndex,
          KeySchema: [
            { AttributeName: j.byTenantKey, KeyType: 'HASH' },
            { AttributeName: j.byTenantSort, KeyType: 'RANGE' },
          ],
          Projection: { ProjectionType: 'ALL' },
        },
        {
          IndexName: j.queuedIndex,
          KeySchema: [
            { AttributeName: j.queuedKey, KeyType: 'HASH' },
            { AttributeName: j.queuedSort, KeyType: 'RANGE' },
          ],
          Projection: { ProjectionType: 'KEYS_ONLY' },
        },
        {
          IndexName: j.openIndex,
          KeySchema: [
            { AttributeName: j.openKey, KeyType: 'HASH' },
            { AttributeName: j.openSort, KeyType: 'RANGE' },
          ],
          Projection: { ProjectionType: 'INCLUDE', NonKeyAttributes: [...j.openProjection] },
        },
      ],
    }),
  );
  for (const [table, key] of [
    [tables.keys, TABLES.keys.partitionKey],
    [tables.tenants, TABLES.tenants.partitionKey],
    [tables.idempotency, TABLES.idempotency.partitionKey],
    [tables.rateLimits, TABLES.rateLimits.partitionKey],
  ] as const) {
    await dynamodb.send(
      new CreateTableCommand({
        TableName: table,
        BillingMode: 'PAY_PER_REQUEST',
        AttributeDefinitions: [{ AttributeName: key, AttributeType: 'S' }],
        KeySchema: [{ AttributeName: key, KeyType: 'HASH' }],
      }),
    );
  }
  await dynamodb.send(
    new CreateTableCommand({
      TableName: tables.usage,
      BillingMode: 'PAY_PER_REQUEST',
      AttributeDefinitions: [
        { AttributeName: TABLES.usage.partitionKey, AttributeType: 'S' },
        { AttributeName: TABLES.usage.sortKey, AttributeType: 'S' },
      ],
      KeySchema: [
        { AttributeName: TABLES.usage.partitionKey, KeyType: 'HASH' },
        { AttributeName: TABLES.usage.sortKey, KeyType: 'RANGE' },
      ],
    }),
  );
  dynamodb.destroy();
  const { bucket, queues, eventsQueueUrl } = await createQueueResources(em, options);
  const env: Record<string, string> = {
    [ENV.JOBS_TABLE]: tables.jobs,
    [ENV.KEYS_TABLE]: tables.keys,
    [ENV.TENANTS_TABLE]: tables.tenants,
    [ENV.USAGE_TABLE]: tables.usage,
    [ENV.IDEMPOTENCY_TABLE]: tables.idempotency,
    [ENV.RATE_LIMITS_TABLE]: tables.rateLimits,
    [ENV.MEDIA_BUCKET]: bucket,
    [ENV.JOB_QUEUES]: JSON.stringify(Object.fromEntries(Object.entries(queues).map(([m, q]) => [m, q.url]))),
    [ENV.EVENTS_QUEUE_URL]: eventsQueueUrl,
    [ENV.AWS_ENDPOINT_SQS]: em.sqsEndpoint,
    [ENV.AWS_ENDPOINT_S3]: em.s3Endpoint,
    [ENV.AWS_ENDPOINT_DYNAMODB]: em.dynamodbEndpoint,
    AWS_REGION: LOCAL_REGION,
    AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
  };
  return { env, tables, bucket, queues, eventsQueueUrl };
}

export type QueueResources = Pick<LocalResources, 'bucket' | 'queues' | 'eventsQueueUrl'>;

/**
 * The SQS queues (jobs + DLQ per model, events) and the media bucket. Called again after the
 * fauxqs emulator restarted empty: the same names give the same queue URLs. In AWS these are
 * durable; only their messages and objects are at stake in a failure.
 */
export async function createQueueResources(
  em: Pick<Emulators, 'sqsEndpoint' | 's3Endpoint' | 'dynamodbEndpoint'>,
  options: LocalResourceOptions = {},
): Promise<QueueResources> {
  const prefix = options.prefix ?? 'sd3';
  const models = options.models ?? ['sd3-medium'];
  const { sqs, s3, dynamodb } = localClients(em);
  dynamodb.destroy();
  try {
    const bucket = `${prefix}-media`;
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    const queues: LocalResources['queues'] = {};
    for (const model of models) {
      const dlq = await sqs.send(new CreateQueueCommand({ QueueName: `${prefix}-${model}-dlq` }));
      const dlqArn = (
        await sqs.send(
          new GetQueueAttributesCommand({ QueueUrl: dlq.QueueUrl!, AttributeNames: ['QueueArn'] }),
        )
      ).Attributes!['QueueArn']!;
      const q = await sqs.send(
        new CreateQueueCommand({
          QueueName: `${prefix}-${model}-jobs`,
          Attributes: {
            VisibilityTimeout: String(options.visibilityTimeoutSeconds ?? 30),
            RedrivePolicy: JSON.stringify({
              deadLetterTargetArn: dlqArn,
              maxReceiveCount: options.maxReceives ?? MAX_RECEIVES,
            }),
          },
        }),
      );
      queues[model] = { url: q.QueueUrl!, dlqUrl: dlq.QueueUrl! };
    }
    const events = await sqs.send(new CreateQueueCommand({ QueueName: `${prefix}-events` }));
    return { bucket, queues, eventsQueueUrl: events.QueueUrl! };
  } finally {
    sqs.destroy();
    s3.destroy();
  }
}
