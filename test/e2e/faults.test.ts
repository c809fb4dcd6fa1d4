/**
 * End to end under faults: cancellation while queued and while running, a runner killed with
 * SIGKILL mid-job, and a forged queue message. Short visibility timeouts and leases make SQS
 * redeliver within seconds.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient, GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { newJobId } from '@sd3/edge';
import { ENV, type JobRecord, nextEvent, outputPrefix, serializeEnvelope, signEnvelope } from '@sd3/shared';
import { localClients } from '../../local/resources.js';
import { type LocalStack, startLocalStack } from '../../local/stack.js';
import { ApiClient } from './api-client.js';

let dir: string;
let stack: LocalStack;
let api: ApiClient;

const fastRedelivery = {
  SD3_RUNNER_VISIBILITY_TIMEOUT_SECONDS: '4',
  SD3_RUNNER_HEARTBEAT_INTERVAL_SECONDS: '1',
  SD3_RUNNER_RETRY_BACKOFF_SECONDS: '1',
  SD3_RUNNER_GRACE_SECONDS: '0',
  // Cancellation is read with the progress writes.
  SD3_RUNNER_PROGRESS_INTERVAL_MS: '100',
};

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sd3-e2e-faults-'));
  stack = await startLocalStack({
    tinyModelDir: join(dir, 'tiny'),
    edgeLogs: false,
    startRunner: false,
    visibilityTimeoutSeconds: 4,
    runnerEnv: fastRedelivery,
  });
  api = new ApiClient(stack.url, stack.apiKey.token);
});
after(async () => {
  await stack.stop();
  await rm(dir, { recursive: true, force: true });
});

/** A job long enough to be caught running on this machine (400 steps at 512x512, CFG). */
const LONG = { prompt: 'a long one', steps: 400, width: 512, height: 512 };

test('cancel while queued costs nothing and the runner skips it', async () => {
  const created = await api.create({ prompt: 'never runs', steps: 4 });
  assert.equal(created.body.status, 'queued');
  assert.equal(created.body.queue_position, 0);
  const canceled = await api.request<{ status: string }>('POST', `/v1/generations/${created.body.id}/cancel`);
  assert.equal(canceled.status, 200);
  assert.equal(canceled.body.status, 'canceled');
  const runner = await stack.startRunner();
  try {
    // A job created after it runs, proving the runner got past the canceled job's message.
    const next = await api.create({ prompt: 'runs', steps: 2 });
    assert.equal((await api.waitFor(next.body.id)).status, 'succeeded');
    const job = (await api.get(created.body.id)).body;
    assert.equal(job.status, 'canceled');
    assert.equal(job.outputs.length, 0);
    assert.equal(job.started_at, null);
  } finally {
    await runner.stop();
  }
});

test('cancel while running stops between steps', async () => {
  const runner = await stack.startRunner();
  try {
    const created = await api.create(LONG);
    const running = await api.waitFor(
      created.body.id,
      60_000,
      (j) => j.status === 'running' && (j.progress?.step ?? 0) >= 1,
    );
    assert.equal(running.status, 'running');
    const res = await api.request<{ status: string }>('POST', `/v1/generations/${created.body.id}/cancel`);
    assert.equal(res.status, 202);
    const job = await api.waitFor(created.body.id);
    assert.equal(job.status, 'canceled');
    assert.equal(job.outputs.length, 0);
    const events = (await api.request<string>('GET', `/v1/generations/${created.body.id}/events`)).body;
    const canceledEvent = String(events)
      .split('\n')
      .filter((l) => l.startsWith('data:'))
      .map((l) => JSON.parse(l.slice(5)) as { type: string; data: { steps_completed?: number } })
      .find((e) => e.type === 'generation.canceled');
    assert.ok(canceledEvent, String(events));
    const steps = canceledEvent.data.steps_completed ?? -1;
    assert.ok(steps >= 1 && steps < 400, JSON.stringify(canceledEvent));
  } finally {
    await runner.stop();
  }
});

test('a runner killed mid-job: the job still completes exactly once after redelivery', async () => {
  const first = await stack.startRunner();
  const created = await api.create(LONG);
  await api.waitFor(created.body.id, 60_000, (j) => j.status === 'running' && (j.progress?.step ?? 0) >= 1);
  await first.kill();
  const second = await stack.startRunner();
  try {
    const job = await api.waitFor(created.body.id, 90_000);
    assert.equal(job.status, 'succeeded', JSON.stringify(job.error));
    assert.equal(job.outputs.length, 1);
    assert.equal((await fetch(job.outputs[0]!.url)).status, 200);
    const text = String((await api.request<string>('GET', `/v1/generations/${created.body.id}/events`)).body);
    const types = text
      .split('\n')
      .filter((l) => l.startsWith('data:'))
      .map((l) => (JSON.parse(l.slice(5)) as { type: string }).type);
    assert.equal(types.filter((t) => t === 'generation.succeeded').length, 1);
    assert.equal(types.filter((t) => t === 'generation.started').length, 2, types.join(','));
  } finally {
    await second.stop();
  }
});

test('a runner killed mid-job with a paying tenant and a webhook: charged once, notified once', async () => {
  const { dynamodb } = localClients(stack.emulators);
  const doc = DynamoDBDocumentClient.from(dynamodb);
  const initial = 10_000_000; // millicredits
  await doc.send(
    new UpdateCommand({
      TableName: stack.resources.tables.tenants,
      Key: { tenantId: stack.apiKey.tenantId },
      UpdateExpression: 'SET creditBalance = :b',
      ExpressionAttributeValues: { ':b': initial },
    }),
  );
  const deliveries: { id: string | undefined; type: string }[] = [];
  const receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => {
      body += c.toString('utf8');
    });
    req.on('end', () => {
      deliveries.push({
        id: req.headers['webhook-id'] as string | undefined,
        type: (JSON.parse(body) as { type: string }).type,
      });
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  const port = (receiver.address() as AddressInfo).port;
  const first = await stack.startRunner();
  const from = new Date().toISOString();
  try {
    const created = await api.create({ ...LONG, webhook_url: `http://127.0.0.1:${port}/hook` });
    assert.equal(created.status, 202, JSON.stringify(created.body));
    await api.waitFor(created.body.id, 60_000, (j) => j.status === 'running' && (j.progress?.step ?? 0) >= 1);
    await first.kill();
    const second = await stack.startRunner();
    try {
      const job = await api.waitFor(created.body.id, 90_000);
      assert.equal(job.status, 'succeeded', JSON.stringify(job.error));
      const cost = (job as unknown as { cost: { quote: string; charge: string } }).cost;
      assert.equal(cost.charge, cost.quote);
      const quoteMc = Math.round(Number(cost.quote) * 1000);
      const tenant = await doc.send(
        new GetCommand({
          TableName: stack.resources.tables.tenants,
          Key: { tenantId: stack.apiKey.tenantId },
        }),
      );
      assert.equal(tenant.Item!['creditBalance'], initial - quoteMc);
      // The notifier delivers the terminal event once; wait long enough for a duplicate to show up.
      const deadline = Date.now() + 15_000;
      while (Date.now() < deadline && !deliveries.some((d) => d.type === 'generation.succeeded')) {
        await new Promise((r) => setTimeout(r, 100));
      }
      await new Promise((r) => setTimeout(r, 2_000));
      const succeeded = deliveries.filter((d) => d.type === 'generation.succeeded');
      assert.equal(succeeded.length, 1, JSON.stringify(deliveries));
      // Exactly one usage item for the job, with the charge.
      const usage = await api.request<{ total: { generations: number; charge: string } }>(
        'GET',
        `/v1/usage?from=${from}&to=${new Date(Date.now() + 60_000).toISOString()}&group_by=key`,
      );
      assert.equal(usage.status, 200, JSON.stringify(usage.body));
      assert.equal(usage.body.total.generations, 1, JSON.stringify(usage.body));
      assert.equal(usage.body.total.charge, cost.charge);
    } finally {
      await second.stop();
    }
  } finally {
    receiver.close();
    dynamodb.destroy();
  }
});

test('a forged envelope is refused: the job fails with a clear code and is not retried', async () => {
  const { dynamodb, sqs } = localClients(stack.emulators);
  const doc = DynamoDBDocumentClient.from(dynamodb, { marshallOptions: { removeUndefinedValues: true } });
  const jobId = newJobId(Date.now());
  const now = Date.now();
  const params = {
    prompt: 'forged',
    negative_prompt: '',
    width: 64,
    height: 64,
    steps: 2,
    guidance_scale: 7,
    seed: 1,
    n: 1,
    output_format: 'png' as const,
    output_quality: 90,
    strength: null,
    output_ttl_seconds: 3600,
  };
  const base = { jobId, events: [] };
  const record: JobRecord = {
    jobId,
    tenantId: stack.apiKey.tenantId,
    keyId: stack.apiKey.keyId,
    model: stack.model.id,
    status: 'queued',
    createdAt: now,
    updatedAt: now,
    params,
    events: [nextEvent(base, 'generation.queued', {}, now)],
    queuedModel: stack.model.id,
    enqueuedAt: now,
    expiresAt: Math.floor(now / 1000) + 3600,
  };
  await doc.send(new PutCommand({ TableName: stack.resources.tables.jobs, Item: record }));
  const forged = await signEnvelope(
    {
      v: 1,
      jobId,
      tenantId: record.tenantId,
      model: record.model,
      params,
      inputs: {},
      outputPrefix: outputPrefix(record.tenantId, jobId),
      issuedAt: now,
      expiresAt: now + 600_000,
      kid: 'local-1',
    },
    randomBytes(32),
  );
  await sqs.send(
    new SendMessageCommand({
      QueueUrl: stack.runnerEnv[ENV.JOB_QUEUE_URL]!,
      MessageBody: serializeEnvelope(forged),
    }),
  );
  const runner = await stack.startRunner();
  try {
    const job = await api.waitFor(jobId, 30_000);
    assert.equal(job.status, 'failed');
    assert.equal(job.error?.code, 'envelope_invalid');
    assert.equal(job.started_at, null);
  } finally {
    await runner.stop();
    sqs.destroy();
    dynamodb.destroy();
  }
});
