/**
 * Test harness: the emulators (fauxqs + dynalite) with the stack's tables, queues and bucket, two
 * seeded tenants with keys, the edge app on the real AWS implementations, and a fake runner that
 * moves jobs through the shared JobRecord transitions the way the GPU runner does.
 */

import type { S3Client } from '@aws-sdk/client-s3';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { DeleteMessageCommand, ReceiveMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient, GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import {
  EDGE_ENV,
  ENV,
  type EnvelopePayload,
  type JobOutputRecord,
  type JobRecord,
  type KeyScope,
  type ModelInfo,
  nextEvent,
  outputKey,
  parseSigningKeys,
  verifyEnvelope,
} from '@sd3/shared';
import type { Hono } from 'hono';
import sharp from 'sharp';
import { type Emulators, startEmulators } from '../../../local/emulators.js';
import { createLocalResources, type LocalResources, localClients } from '../../../local/resources.js';
import { type SeededKey, seedTenantAndKey } from '../../../local/seed.js';
import { type AwsDeps, createAwsDeps } from '../adapters/aws/create-aws-deps.js';
import { createApp } from '../app.js';
import type { EdgeDeps } from '../deps.js';
import type { AppEnv } from '../http/app-env.js';
import { silentLogger } from '../logger.js';

export const TEST_MODELS: ModelInfo[] = [
  {
    id: 'tiny',
    object: 'model',
    description: 'SD3-shaped test model',
    default: true,
    native_size: 64,
    max_megapixels: 0.3,
    max_steps: 50,
    default_steps: 4,
    default_guidance_scale: 7,
    output_formats: ['png', 'jpeg', 'webp'],
  },
  {
    id: 'sd3-medium',
    object: 'model',
    description: 'SD3 Medium',
    default: false,
    native_size: 1024,
    max_megapixels: 2.1,
    max_steps: 100,
    default_steps: 28,
    default_guidance_scale: 7,
    output_formats: ['png', 'jpeg', 'webp'],
  },
];

const SIGNING_KEYS = JSON.stringify({ k1: Buffer.alloc(32, 7).toString('base64') });

export interface CallOptions {
  token?: string;
  json?: unknown;
  body?: string | Uint8Array;
  headers?: Record<string, string>;
}

export interface EdgeStack {
  app: Hono<AppEnv>;
  deps: AwsDeps;
  env: Record<string, string>;
  resources: LocalResources;
  doc: DynamoDBDocumentClient;
  s3: S3Client;
  sqs: SQSClient;
  /** Tenant A: generate + read; tenant A read-only; tenant B: generate + read. */
  a: SeededKey;
  aRead: SeededKey;
  b: SeededKey;
  call(method: string, path: string, options?: CallOptions): Promise<Response>;
  /** Builds another app on the same emulators with changed env or deps. */
  appWith(env: Record<string, string>, overrides?: Partial<EdgeDeps>): { app: Hono<AppEnv>; deps: AwsDeps };
  runner: FakeRunner;
  stop(): Promise<void>;
}

export interface FakeRunner {
  getRecord(jobId: string): Promise<JobRecord>;
  start(jobId: string): Promise<void>;
  progress(jobId: string, step: number): Promise<void>;
  /** A live preview as the runner writes it: a 16x16 JPEG on the job, a `generation.preview` event. */
  preview(jobId: string, step: number): Promise<void>;
  /** Writes real PNG outputs to the bucket and finishes the job. */
  succeed(jobId: string): Promise<void>;
  /** Receives every message of the model's queue, verifies each envelope and returns them. */
  receiveAll(model: string): Promise<{ payload: EnvelopePayload; attributes: Record<string, string> }[]>;
  /** Processes messages in the background like a runner until stopped. */
  loop(model: string): { stop(): Promise<void> };
}

export async function startEdgeStack(
  options: { tuning?: EdgeDeps['tuning']; keyCacheTtlMs?: number } = {},
): Promise<EdgeStack> {
  const em = await startEmulators();
  try {
    return await build(em, options);
  } catch (err) {
    await em.stop();
    throw err;
  }
}

async function build(
  em: Emulators,
  options: { tuning?: EdgeDeps['tuning']; keyCacheTtlMs?: number },
): Promise<EdgeStack> {
  const resources = await createLocalResources(em, { models: TEST_MODELS.map((m) => m.id) });
  const { dynamodb, s3, sqs } = localClients(em);
  const doc = DynamoDBDocumentClient.from(dynamodb, { marshallOptions: { removeUndefinedValues: true } });
  const tables = resources.tables;
  const a = await seedTenantAndKey(dynamodb, tables, { tenantId: 'ten_a' });
  const aRead = await seedTenantAndKey(dynamodb, tables, {
    tenantId: 'ten_a',
    scopes: ['read'] as KeyScope[],
  });
  const b = await seedTenantAndKey(dynamodb, tables, { tenantId: 'ten_b' });
  const env: Record<string, string> = {
    ...resources.env,
    [ENV.SIGNING_KEYS]: SIGNING_KEYS,
    [ENV.SIGNING_KEY_ID]: 'k1',
    [EDGE_ENV.MODELS]: JSON.stringify(TEST_MODELS),
  };
  const made: AwsDeps[] = [];
  const appWith = (extra: Record<string, string>, overrides: Partial<EdgeDeps> = {}) => {
    const deps = createAwsDeps(
      { ...env, ...extra },
      {
        logger: silentLogger,
        tuning: { pollIntervalMs: 50, enqueueRetryDelaysMs: [10, 20], ...options.tuning },
        ...(options.keyCacheTtlMs !== undefined ? { keyCacheTtlMs: options.keyCacheTtlMs } : {}),
        ...overrides,
      },
    );
    made.push(deps);
    return { app: createApp(deps), deps };
  };
  const { app, deps } = appWith({});
  const keys = parseSigningKeys(SIGNING_KEYS);

  const call = async (method: string, path: string, o: CallOptions = {}): Promise<Response> => {
    const headers: Record<string, string> = { ...o.headers };
    if (o.token) headers['authorization'] = `Bearer ${o.token}`;
    let body: string | Uint8Array | undefined = o.body;
    if (o.json !== undefined) {
      body = JSON.stringify(o.json);
      headers['content-type'] ??= 'application/json';
    }
    return app.request(path, { method, headers, ...(body !== undefined ? { body } : {}) });
  };

  const getRecord = async (jobId: string) => {
    const out = await doc.send(
      new GetCommand({ TableName: tables.jobs, Key: { jobId }, ConsistentRead: true }),
    );
    if (!out.Item) throw new Error(`no job ${jobId}`);
    return out.Item as JobRecord;
  };

  const append = async (
    jobId: string,
    build: (r: JobRecord) => {
      set: Record<string, unknown>;
      event: Parameters<typeof nextEvent>[1];
      data: Record<string, unknown>;
      from: string;
      removeQueued?: boolean;
    },
  ) => {
    const r = await getRecord(jobId);
    const { set, event, data, from, removeQueued } = build(r);
    const names: Record<string, string> = { '#s': 'status' };
    const values: Record<string, unknown> = {
      ':from': from,
      ':ev': [nextEvent(r, event, data)],
      ':n': r.events.length,
    };
    const sets = Object.entries(set).map(([k, v], i) => {
      names[`#f${i}`] = k;
      values[`:v${i}`] = v;
      return `#f${i} = :v${i}`;
    });
    await doc.send(
      new UpdateCommand({
        TableName: tables.jobs,
        Key: { jobId },
        ConditionExpression: '#s = :from AND size(events) = :n',
        UpdateExpression: `SET ${[...sets, 'events = list_append(events, :ev)'].join(', ')}${removeQueued ? ' REMOVE queuedModel' : ''}`,
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: values,
      }),
    );
  };

  const runner: FakeRunner = {
    getRecord,
    start: (jobId) =>
      append(jobId, () => ({
        from: 'queued',
        removeQueued: true,
        set: { status: 'running', startedAt: Date.now(), runnerId: 'fake', leaseUntil: Date.now() + 60_000 },
        event: 'generation.started',
        data: { status: 'running' },
      })),
    progress: (jobId, step) =>
      append(jobId, (r) => ({
        from: 'running',
        set: { progress: { step, totalSteps: r.params.steps } },
        event: 'generation.progress',
        data: { step, total_steps: r.params.steps },
      })),
    async preview(jobId, step) {
      const jpeg = await sharp({
        create: { width: 16, height: 16, channels: 3, background: { r: (step * 40) % 256, g: 80, b: 160 } },
      })
        .jpeg({ quality: 70 })
        .toBuffer();
      await append(jobId, (r) => {
        const totalSteps = r.params.steps;
        const preview = {
          step,
          totalSteps,
          mime: 'image/jpeg',
          data: jpeg.toString('base64'),
          width: 16,
          height: 16,
        };
        return {
          from: 'running',
          set: { progress: { step, totalSteps }, preview },
          event: 'generation.preview',
          data: { step, total_steps: totalSteps },
        };
      });
    },
    async succeed(jobId) {
      if ((await getRecord(jobId)).status === 'queued') await runner.start(jobId);
      const r = await getRecord(jobId);
      const outputs: JobOutputRecord[] = [];
      for (let i = 0; i < r.params.n; i++) {
        const { width, height } = r.params;
        const png = await sharp({
          create: { width, height, channels: 3, background: { r: 10 * i, g: 100, b: 200 } },
        })
          .png()
          .toBuffer();
        const key = outputKey(r.tenantId, r.jobId, i, 'png');
        await s3.send(
          new PutObjectCommand({ Bucket: resources.bucket, Key: key, Body: png, ContentType: 'image/png' }),
        );
        outputs.push({
          index: i,
          key,
          format: 'png',
          width,
          height,
          bytes: png.length,
          seed: r.params.seed + i,
        });
      }
      await append(jobId, (rec) => ({
        from: 'running',
        set: {
          status: 'succeeded',
          completedAt: Date.now(),
          outputs,
          progress: { step: rec.params.steps, totalSteps: rec.params.steps },
          timings: { denoise_ms: 5, total_ms: 9 },
        },
        event: 'generation.succeeded',
        data: { status: 'succeeded', outputs: outputs.length },
      }));
    },
    async receiveAll(model) {
      const url = resources.queues[model]!.url;
      const out: { payload: EnvelopePayload; attributes: Record<string, string> }[] = [];
      for (;;) {
        const got = await sqs.send(
          new ReceiveMessageCommand({
            QueueUrl: url,
            MaxNumberOfMessages: 10,
            WaitTimeSeconds: 0,
            MessageAttributeNames: ['All'],
          }),
        );
        if (!got.Messages?.length) return out;
        for (const m of got.Messages) {
          const attributes = Object.fromEntries(
            Object.entries(m.MessageAttributes ?? {}).map(([k, v]) => [k, v.StringValue ?? '']),
          );
          out.push({ payload: await verifyEnvelope(m.Body!, keys), attributes });
          await sqs.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: m.ReceiptHandle! }));
        }
      }
    },
    loop(model) {
      let running = true;
      const done = (async () => {
        while (running) {
          const url = resources.queues[model]!.url;
          const got = await sqs.send(
            new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }),
          );
          for (const m of got.Messages ?? []) {
            const payload = await verifyEnvelope(m.Body!, keys);
            if ((await getRecord(payload.jobId)).status === 'queued') {
              await new Promise((r) => setTimeout(r, 150));
              await runner.succeed(payload.jobId);
            }
            await sqs.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: m.ReceiptHandle! }));
          }
          if (!got.Messages?.length) await new Promise((r) => setTimeout(r, 50));
        }
      })();
      return {
        async stop() {
          running = false;
          await done;
        },
      };
    },
  };

  return {
    app,
    deps,
    env,
    resources,
    doc,
    s3,
    sqs,
    a,
    aRead,
    b,
    call,
    appWith,
    runner,
    async stop() {
      for (const d of made) d.destroy();
      dynamodb.destroy();
      s3.destroy();
      sqs.destroy();
      await em.stop();
    },
  };
}
