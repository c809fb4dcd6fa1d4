/**
 * Test support for the runner service: emulators with the stack's resources, jobs written and
 * enqueued the way the edge does it (a queued JobRecord, then a signed envelope), and polling
 * helpers. Used only by the service's *.test.ts files.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { GetQueueAttributesCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import {
  ENV,
  type EnvelopePayload,
  JOB_RETENTION_SECONDS,
  type JobRecord,
  MESSAGE_ATTRIBUTES,
  type NormalizedParams,
  nextEvent,
  outputPrefix,
  REQUEST_ID_MESSAGE_ATTRIBUTE,
  RUNNER_ENV,
  serializeEnvelope,
  signEnvelope,
} from '@sd3/shared';
import { type Emulators, startEmulators } from '../../../local/emulators.js';
import {
  createLocalResources,
  LOCAL_CREDENTIALS,
  LOCAL_REGION,
  type LocalResources,
} from '../../../local/resources.js';
import { type AwsClients, createAwsClients } from './aws-clients.js';

export const MODEL_ID = 'tiny';
export const TENANT = 'tenant_test';
export const KEY_ID = 'k1';

export interface Stack {
  em: Emulators;
  clients: AwsClients;
  secret: Uint8Array;
  signingKeysJson: string;
  stop(): Promise<void>;
}

/** Emulators plus SDK clients; the process gets local credentials so the runner's own clients work. */
export async function startStack(): Promise<Stack> {
  process.env['AWS_ACCESS_KEY_ID'] = LOCAL_CREDENTIALS.accessKeyId;
  process.env['AWS_SECRET_ACCESS_KEY'] = LOCAL_CREDENTIALS.secretAccessKey;
  process.env['AWS_REGION'] = LOCAL_REGION;
  const em = await startEmulators();
  const clients = createAwsClients({
    region: LOCAL_REGION,
    endpoints: { sqs: em.sqsEndpoint, s3: em.s3Endpoint, dynamodb: em.dynamodbEndpoint },
  });
  const secret = new Uint8Array(randomBytes(32));
  return {
    em,
    clients,
    secret,
    signingKeysJson: JSON.stringify({ [KEY_ID]: Buffer.from(secret).toString('base64') }),
    async stop() {
      clients.destroy();
      await em.stop();
    },
  };
}

export interface Lane {
  res: LocalResources;
  queueUrl: string;
  dlqUrl: string;
  /** Environment for runnerConfigFromEnv; override tunables per test. */
  env(overrides?: Record<string, string>): Record<string, string>;
}

/** A separate set of tables, queues and bucket, so runners of different tests never meet. */
export async function createLane(
  stack: Stack,
  prefix: string,
  modelDir: string,
  options: { maxReceives?: number; visibilityTimeoutSeconds?: number } = {},
): Promise<Lane> {
  const visibility = options.visibilityTimeoutSeconds ?? 4;
  const res = await createLocalResources(stack.em, {
    prefix,
    models: [MODEL_ID],
    visibilityTimeoutSeconds: visibility,
    maxReceives: options.maxReceives ?? 3,
  });
  const q = res.queues[MODEL_ID]!;
  return {
    res,
    queueUrl: q.url,
    dlqUrl: q.dlqUrl,
    env: (overrides = {}) => ({
      ...res.env,
      [ENV.JOB_QUEUE_URL]: q.url,
      [ENV.DLQ_URL]: q.dlqUrl,
      [ENV.SIGNING_KEYS]: stack.signingKeysJson,
      [ENV.MODEL_ID]: MODEL_ID,
      [ENV.MODEL_DIR]: modelDir,
      [ENV.PROVIDER]: 'cpu',
      [RUNNER_ENV.WAIT_TIME_SECONDS]: '1',
      [RUNNER_ENV.VISIBILITY_TIMEOUT_SECONDS]: String(visibility),
      [RUNNER_ENV.HEARTBEAT_INTERVAL_SECONDS]: '1',
      [RUNNER_ENV.PROGRESS_INTERVAL_MS]: '50',
      [RUNNER_ENV.GRACE_SECONDS]: '0',
      [RUNNER_ENV.HEALTH_PORT]: '0',
      [RUNNER_ENV.HEALTH_HOST]: '127.0.0.1',
      [RUNNER_ENV.RETRY_BACKOFF_SECONDS]: '0',
      [RUNNER_ENV.DLQ_SWEEP_INTERVAL_SECONDS]: '1',
      [RUNNER_ENV.LOG_LEVEL]: 'warn',
      ...overrides,
    }),
  };
}

export function defaultParams(overrides: Partial<NormalizedParams> = {}): NormalizedParams {
  return {
    prompt: 'a lighthouse at dusk',
    negative_prompt: '',
    width: 64,
    height: 64,
    steps: 4,
    guidance_scale: 5,
    seed: 42,
    n: 1,
    output_format: 'png',
    output_quality: 90,
    strength: null,
    output_ttl_seconds: 3600,
    ...overrides,
  };
}

export interface SubmitOptions {
  params?: Partial<NormalizedParams>;
  /** S3 key of an img2img input already uploaded. */
  inputKey?: string;
  /** Sign with another secret (a forger without the key), or change the payload after signing. */
  tamper?: 'forged' | 'altered';
  expired?: boolean;
  /** Fields to put on the record (e.g. a running state left by a dead runner). */
  record?: Partial<JobRecord>;
  /** Send to this queue instead of the lane's jobs queue (e.g. straight into the DLQ). */
  queueUrl?: string;
}

export interface Submitted {
  jobId: string;
  body: string;
  sig: string;
}

/** Writes a queued job and sends its signed envelope, as the edge does. */
export async function submitJob(stack: Stack, lane: Lane, options: SubmitOptions = {}): Promise<Submitted> {
  const jobId = `gen_${randomUUID().replaceAll('-', '')}`;
  const now = Date.now();
  const params = defaultParams(options.params);
  const base: Pick<JobRecord, 'jobId' | 'events'> = { jobId, events: [] };
  const record: JobRecord = {
    jobId,
    tenantId: TENANT,
    keyId: 'key_test',
    model: MODEL_ID,
    status: 'queued',
    createdAt: now,
    updatedAt: now,
    params,
    ...(options.inputKey ? { inputImageKey: options.inputKey } : {}),
    events: [nextEvent(base, 'generation.queued', {}, now)],
    queuedModel: MODEL_ID,
    expiresAt: Math.floor(now / 1000) + JOB_RETENTION_SECONDS,
    ...options.record,
  };
  await stack.clients.ddb.send(
    new PutCommand({
      TableName: lane.res.tables.jobs,
      Item: record,
      ConditionExpression: 'attribute_not_exists(jobId)',
    }),
  );
  const payload: EnvelopePayload = {
    v: 1,
    jobId,
    tenantId: TENANT,
    model: MODEL_ID,
    params,
    inputs: options.inputKey ? { image: options.inputKey } : {},
    outputPrefix: outputPrefix(TENANT, jobId),
    issuedAt: options.expired ? now - 7_200_000 : now,
    expiresAt: options.expired ? now - 3_600_000 : now + 3_600_000,
    kid: KEY_ID,
  };
  const secret = options.tamper === 'forged' ? new Uint8Array(randomBytes(32)) : stack.secret;
  const envelope = await signEnvelope(payload, secret);
  if (options.tamper === 'altered')
    envelope.payload = { ...envelope.payload, params: { ...params, steps: 1 } };
  const body = serializeEnvelope(envelope);
  const sent = await stack.clients.sqs.send(
    new SendMessageCommand({
      QueueUrl: options.queueUrl ?? lane.queueUrl,
      MessageBody: body,
      MessageAttributes: {
        [MESSAGE_ATTRIBUTES.jobId]: { DataType: 'String', StringValue: jobId },
        [MESSAGE_ATTRIBUTES.tenantId]: { DataType: 'String', StringValue: TENANT },
        [MESSAGE_ATTRIBUTES.model]: { DataType: 'String', StringValue: MODEL_ID },
        [REQUEST_ID_MESSAGE_ATTRIBUTE]: { DataType: 'String', StringValue: `req_${jobId}` },
      },
    }),
  );
  await stack.clients.ddb.send(
    new UpdateCommand({
      TableName: lane.res.tables.jobs,
      Key: { jobId },
      UpdateExpression: 'SET enqueuedAt = :t, messageId = :m',
      ExpressionAttributeValues: { ':t': Date.now(), ':m': sent.MessageId },
    }),
  );
  return { jobId, body, sig: envelope.sig };
}

export async function getJob(stack: Stack, lane: Lane, jobId: string): Promise<JobRecord> {
  const out = await stack.clients.ddb.send(
    new GetCommand({ TableName: lane.res.tables.jobs, Key: { jobId }, ConsistentRead: true }),
  );
  if (!out.Item) throw new Error(`job ${jobId} not found`);
  return out.Item as JobRecord;
}

export async function queueCounts(
  stack: Stack,
  queueUrl: string,
): Promise<{ visible: number; hidden: number }> {
  const out = await stack.clients.sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: queueUrl,
      AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
    }),
  );
  return {
    visible: Number(out.Attributes?.['ApproximateNumberOfMessages'] ?? 0),
    hidden: Number(out.Attributes?.['ApproximateNumberOfMessagesNotVisible'] ?? 0),
  };
}

/** Polls until `check` returns a value other than undefined/false. */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`,
      );
    }
    await new Promise((r) => setTimeout(r, 25));
  }
}
