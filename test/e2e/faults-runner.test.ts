/**
 * End to end under runner-side faults, with real runner processes against the local stack: a model
 * file corrupted on disk, a poison message (a model that only runs at one latent size, so jobs of
 * another size throw inside onnxruntime on every attempt), SIGTERM mid-denoise with and without a
 * grace period, and the same message delivered twice to two runners at once. Every accepted job
 * must end in exactly one terminal state, be charged at most once and notified at most once.
 */
import assert from 'node:assert/strict';
import { cp, mkdtemp, open, readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import {
  ChangeMessageVisibilityCommand,
  GetQueueAttributesCommand,
  type MessageAttributeValue,
  ReceiveMessageCommand,
  SendMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient, GetCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { writeTinyModel } from '@sd3/gpu-runner';
import { ENV, type Job, type JobEvent, outputPrefix, RUNNER_ENV, TABLES } from '@sd3/shared';
import { localClients } from '../../local/resources.js';
import { type RunnerProcess, startRunnerProcess } from '../../local/runner-process.js';
import { type LocalStack, startLocalStack } from '../../local/stack.js';
import { ApiClient } from './api-client.js';

let dir: string;
let stack: LocalStack;
let api: ApiClient;
let clients: { dynamodb: DynamoDBClient; sqs: SQSClient; s3: S3Client };
let doc: DynamoDBDocumentClient;
let hooks: WebhookReceiver;
/** A tiny model whose transformer only runs at 64x64 (latent 8x8), with a manifest. */
let staticDir: string;

const fastRedelivery = {
  SD3_RUNNER_VISIBILITY_TIMEOUT_SECONDS: '4',
  SD3_RUNNER_HEARTBEAT_INTERVAL_SECONDS: '1',
  SD3_RUNNER_RETRY_BACKOFF_SECONDS: '1',
  SD3_RUNNER_GRACE_SECONDS: '0',
  SD3_RUNNER_PROGRESS_INTERVAL_MS: '100',
  SD3_RUNNER_DLQ_SWEEP_INTERVAL_SECONDS: '1',
};

/** Long enough to be caught mid-denoise on this machine (400 steps at 512x512, CFG). */
const LONG = { prompt: 'a long one', steps: 400, width: 512, height: 512 };
const INITIAL_BALANCE = 10_000_000; // millicredits

interface Delivery {
  id: string | undefined;
  type: string;
  jobId: string;
}

interface WebhookReceiver {
  url: string;
  deliveries: Delivery[];
  server: Server;
}

async function startWebhookReceiver(): Promise<WebhookReceiver> {
  const deliveries: Delivery[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => {
      body += c.toString('utf8');
    });
    req.on('end', () => {
      const event = JSON.parse(body) as JobEvent;
      deliveries.push({
        id: req.headers['webhook-id'] as string | undefined,
        type: event.type,
        jobId: event.generation_id,
      });
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, deliveries, server };
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sd3-e2e-faults-runner-'));
  staticDir = join(dir, 'tiny-static');
  await writeTinyModel(staticDir, { staticLatentSize: [8, 8], manifest: true });
  stack = await startLocalStack({
    tinyModelDir: join(dir, 'tiny'),
    edgeLogs: false,
    startRunner: false,
    visibilityTimeoutSeconds: 4,
    runnerEnv: fastRedelivery,
  });
  api = new ApiClient(stack.url, stack.apiKey.token);
  const local = localClients(stack.emulators);
  clients = { dynamodb: local.dynamodb, sqs: local.sqs, s3: local.s3 };
  doc = DynamoDBDocumentClient.from(clients.dynamodb);
  hooks = await startWebhookReceiver();
});
after(async () => {
  hooks?.server.close();
  clients?.dynamodb.destroy();
  clients?.sqs.destroy();
  clients?.s3.destroy();
  await stack?.stop();
  await rm(dir, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function setBalance(millicredits: number): Promise<void> {
  await doc.send(
    new UpdateCommand({
      TableName: stack.resources.tables.tenants,
      Key: { tenantId: stack.apiKey.tenantId },
      UpdateExpression: 'SET creditBalance = :b',
      ExpressionAttributeValues: { ':b': millicredits },
    }),
  );
}

async function balance(): Promise<number> {
  const out = await doc.send(
    new GetCommand({ TableName: stack.resources.tables.tenants, Key: { tenantId: stack.apiKey.tenantId } }),
  );
  return out.Item!['creditBalance'] as number;
}

async function jobRecord(jobId: string): Promise<Record<string, unknown>> {
  const out = await doc.send(
    new GetCommand({ TableName: stack.resources.tables.jobs, Key: { [TABLES.jobs.partitionKey]: jobId } }),
  );
  return out.Item ?? {};
}

/** The usage-ledger items of one job (there must be exactly one once it is settled). */
async function usageItems(jobId: string): Promise<Record<string, unknown>[]> {
  const out = await doc.send(
    new QueryCommand({
      TableName: stack.resources.tables.usage,
      KeyConditionExpression: '#t = :t',
      ExpressionAttributeNames: { '#t': TABLES.usage.partitionKey },
      ExpressionAttributeValues: { ':t': stack.apiKey.tenantId },
    }),
  );
  return (out.Items ?? []).filter((i) => i['jobId'] === jobId);
}

async function eventTypes(jobId: string): Promise<string[]> {
  const text = String((await api.request<string>('GET', `/v1/generations/${jobId}/events`)).body);
  return text
    .split('\n')
    .filter((l) => l.startsWith('data:'))
    .map((l) => (JSON.parse(l.slice(5)) as { type: string }).type);
}

/** Waits for the job's terminal webhook, then a while longer so a duplicate would show up. */
async function terminalDeliveries(jobId: string, type: string): Promise<Delivery[]> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline && !hooks.deliveries.some((d) => d.jobId === jobId && d.type === type)) {
    await sleep(100);
  }
  await sleep(2_000);
  return hooks.deliveries.filter((d) => d.jobId === jobId && d.type === type);
}

/** Runs `check` until it passes or the time is up (then its last failure is thrown). */
async function eventually(check: () => Promise<void>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await check();
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await sleep(200);
    }
  }
}

/** Charged once: balance = initial − quote, one usage item with the charge, settlement done. */
async function assertChargedOnce(job: Job): Promise<void> {
  const cost = (job as unknown as { cost: { quote: string; charge: string } }).cost;
  assert.equal(cost.charge, cost.quote);
  const quoteMc = Math.round(Number(cost.quote) * 1000);
  assert.ok(quoteMc > 0);
  await eventually(async () => {
    assert.equal((await jobRecord(job.id))['settlement'], 'done');
    const items = await usageItems(job.id);
    assert.equal(items.length, 1, JSON.stringify(items));
    assert.equal(items[0]!['charge'], quoteMc);
  });
  assert.equal(await balance(), INITIAL_BALANCE - quoteMc);
}

async function queueDepth(url: string): Promise<number> {
  const out = await clients.sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: url,
      AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
    }),
  );
  const a = out.Attributes ?? {};
  return (
    Number(a['ApproximateNumberOfMessages'] ?? 0) + Number(a['ApproximateNumberOfMessagesNotVisible'] ?? 0)
  );
}

/** The runner's JSON log lines with this message for this job. */
function logLines(runner: RunnerProcess, msg: string, jobId: string): Record<string, unknown>[] {
  return runner
    .output()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((l) => l['msg'] === msg && l['job_id'] === jobId);
}

const queueUrl = () => stack.runnerEnv[ENV.JOB_QUEUE_URL]!;
const dlqUrl = () => stack.runnerEnv[ENV.DLQ_URL]!;

test('a model file corrupted on disk: the runner refuses to start, names the file, claims nothing', async () => {
  const bad = join(dir, 'tiny-corrupt');
  await cp(staticDir, bad, { recursive: true });
  const file = 'transformer/model.onnx_data';
  const manifest = JSON.parse(await readFile(join(bad, 'manifest.json'), 'utf8')) as {
    files: { path: string; sha256: string }[];
  };
  const expected = manifest.files.find((f) => f.path === file)!.sha256;
  // Flip one byte in the middle of the weights: sizes and structure stay valid.
  const handle = await open(join(bad, file), 'r+');
  try {
    const { size } = await handle.stat();
    const byte = Buffer.alloc(1);
    await handle.read(byte, 0, 1, Math.floor(size / 2));
    byte[0] = byte[0]! ^ 0x01;
    await handle.write(byte, 0, 1, Math.floor(size / 2));
  } finally {
    await handle.close();
  }
  const queued = await api.create({ prompt: 'must not be claimed', steps: 2, width: 64, height: 64 });
  assert.equal(queued.status, 202);
  const runner = await startRunnerProcess({ ...stack.runnerEnv, [ENV.MODEL_DIR]: bad });
  let healthy = false;
  while (runner.child.exitCode === null && runner.child.signalCode === null) {
    const res = await fetch(runner.healthUrl).catch(() => null);
    if (res?.status === 200) healthy = true;
    await sleep(50);
  }
  const code = await runner.stop();
  assert.equal(healthy, false, 'healthz must never turn ready');
  assert.equal(code, 1, runner.output());
  const out = runner.output();
  assert.match(out, /runner failed to start/);
  assert.ok(out.includes(`model file ${file} does not match the manifest`), out);
  assert.ok(out.includes(`expected sha256 ${expected}, found `), out);
  assert.doesNotMatch(out, /job started/);
  const job = (await api.get(queued.body.id)).body;
  assert.equal(job.status, 'queued');
  assert.equal(job.started_at, null);
  // Leave nothing running for the next tests: the next runner drops the canceled job's message.
  assert.equal(
    (await api.request<{ status: string }>('POST', `/v1/generations/${queued.body.id}/cancel`)).status,
    200,
  );
});

test('a poison message goes to the DLQ after its receives: failed once, refunded, one webhook; the runner keeps serving', async () => {
  await setBalance(INITIAL_BALANCE);
  const runner = await stack.startRunner({ [ENV.MODEL_DIR]: staticDir });
  try {
    assert.equal(
      runner
        .output()
        .split('\n')
        .filter((l) => l.includes('"model verified against its manifest"')).length,
      1,
      runner.output(),
    );
    // 80x80 is a valid request, but this model's transformer only runs at 64x64.
    const poison = await api.create({
      prompt: 'poison',
      steps: 2,
      width: 80,
      height: 80,
      webhook_url: hooks.url,
    });
    assert.equal(poison.status, 202, JSON.stringify(poison.body));
    const normal = await api.create({ prompt: 'fine', steps: 2, width: 64, height: 64 });
    assert.equal(normal.status, 202);
    const ok = await api.waitFor(normal.body.id, 30_000);
    assert.equal(ok.status, 'succeeded', JSON.stringify(ok.error));

    const failed = await api.waitFor(poison.body.id, 60_000);
    assert.equal(failed.status, 'failed');
    assert.equal(failed.error?.code, 'max_attempts_exceeded');
    assert.match(failed.error?.message ?? '', /failed on 3 attempts; last error: onnxruntime failed running/);
    // Retryable every time: one attempt per receive, never classified as bad input.
    const attempts = logLines(runner, 'job started', poison.body.id).length;
    assert.equal(attempts, 3, runner.output());

    // The message reaches the DLQ; the sweeper sees the job already failed and changes nothing.
    await eventually(async () => {
      assert.equal(await queueDepth(dlqUrl()), 1);
      assert.ok(
        logLines(runner, 'DLQ message swept', poison.body.id).some((l) => l['result'] === 'terminal'),
        'swept',
      );
    }, 30_000);
    assert.equal((await api.get(poison.body.id)).body.status, 'failed');

    // Refunded in full, settled, one usage item without a charge.
    const cost = (failed as unknown as { cost: { quote: string; charge: string } }).cost;
    assert.equal(Number(cost.charge), 0);
    await eventually(async () => {
      assert.equal((await jobRecord(poison.body.id))['settlement'], 'done');
      const items = await usageItems(poison.body.id);
      assert.equal(items.length, 1, JSON.stringify(items));
      assert.equal(items[0]!['charge'], 0);
      assert.equal(items[0]!['status'], 'failed');
    });
    const okCost = (ok as unknown as { cost: { charge: string } }).cost;
    assert.equal(await balance(), INITIAL_BALANCE - Math.round(Number(okCost.charge) * 1000));

    const types = await eventTypes(poison.body.id);
    assert.equal(types.filter((t) => t === 'generation.failed').length, 1, types.join(','));
    assert.equal((await terminalDeliveries(poison.body.id, 'generation.failed')).length, 1);
    const otherEnds = hooks.deliveries.filter(
      (d) => d.jobId === poison.body.id && ['generation.succeeded', 'generation.canceled'].includes(d.type),
    );
    assert.equal(otherEnds.length, 0);

    // Still serving after the poison message is gone.
    const later = await api.create({ prompt: 'after', steps: 2, width: 64, height: 64 });
    assert.equal((await api.waitFor(later.body.id, 30_000)).status, 'succeeded');
    assert.equal((await fetch(runner.healthUrl)).status, 200);
  } finally {
    assert.equal(await runner.stop(), 0);
  }
});

test('SIGTERM mid-denoise with no grace: the job is released, another runner completes it once, charged once', async () => {
  await setBalance(INITIAL_BALANCE);
  const first = await stack.startRunner();
  const created = await api.create({ ...LONG, webhook_url: hooks.url });
  assert.equal(created.status, 202, JSON.stringify(created.body));
  const id = created.body.id;
  await api.waitFor(id, 60_000, (j) => j.status === 'running' && (j.progress?.step ?? 0) >= 1);
  assert.equal(await first.stop(), 0, first.output());
  assert.equal(logLines(first, 'job given back', id).length, 1, first.output());
  assert.equal(logLines(first, 'job succeeded', id).length, 0);
  // Released at once: the job waits for the next runner without a lease or hidden message.
  const released = (await api.get(id)).body;
  assert.equal(released.status, 'running');
  const second = await stack.startRunner();
  try {
    const job = await api.waitFor(id, 90_000);
    assert.equal(job.status, 'succeeded', JSON.stringify(job.error));
    assert.equal(job.outputs.length, 1);
    // The log line follows the terminal write through a pipe: it may land a moment later.
    await eventually(async () => assert.equal(logLines(second, 'job succeeded', id).length, 1));
    const types = await eventTypes(id);
    assert.equal(types.filter((t) => t === 'generation.started').length, 2, types.join(','));
    assert.equal(types.filter((t) => t === 'generation.succeeded').length, 1, types.join(','));
    await assertChargedOnce(job);
    assert.equal((await terminalDeliveries(id, 'generation.succeeded')).length, 1);
  } finally {
    assert.equal(await second.stop(), 0);
  }
});

test('SIGTERM mid-denoise within the grace period: the same runner finishes the job, then exits 0', async () => {
  await setBalance(INITIAL_BALANCE);
  const runner = await stack.startRunner({ [RUNNER_ENV.GRACE_SECONDS]: '120' });
  const created = await api.create({ ...LONG, webhook_url: hooks.url });
  assert.equal(created.status, 202, JSON.stringify(created.body));
  const id = created.body.id;
  await api.waitFor(id, 60_000, (j) => j.status === 'running' && (j.progress?.step ?? 0) >= 1);
  assert.equal(await runner.stop(), 0, runner.output());
  // Finished before the process exited, by this runner, in one attempt.
  const job = (await api.get(id)).body;
  assert.equal(job.status, 'succeeded', JSON.stringify(job.error));
  assert.equal(job.outputs.length, 1);
  assert.equal(logLines(runner, 'job succeeded', id).length, 1, runner.output());
  assert.equal(logLines(runner, 'job given back', id).length, 0);
  const types = await eventTypes(id);
  assert.equal(types.filter((t) => t === 'generation.started').length, 1, types.join(','));
  assert.equal(types.filter((t) => t === 'generation.succeeded').length, 1, types.join(','));
  await assertChargedOnce(job);
  assert.equal((await terminalDeliveries(id, 'generation.succeeded')).length, 1);
  assert.equal(await queueDepth(queueUrl()), 0);
});

test('the same message delivered to two runners at once: one execution, charged once, both messages deleted', async () => {
  await setBalance(INITIAL_BALANCE);
  // The poison test left its message in the DLQ (kept for inspection): nothing may join it.
  const dlqBefore = await queueDepth(dlqUrl());
  // No runner is up: the job's one message waits in the queue; put a second copy beside it.
  const created = await api.create({ ...LONG, steps: 150, webhook_url: hooks.url });
  assert.equal(created.status, 202, JSON.stringify(created.body));
  const id = created.body.id;
  const received = await clients.sqs.send(
    new ReceiveMessageCommand({
      QueueUrl: queueUrl(),
      MaxNumberOfMessages: 1,
      WaitTimeSeconds: 2,
      MessageAttributeNames: ['All'],
    }),
  );
  const message = received.Messages?.[0];
  assert.ok(message?.Body, 'the job message is in the queue');
  const attributes: Record<string, MessageAttributeValue> = {};
  for (const [name, value] of Object.entries(message.MessageAttributes ?? {})) {
    attributes[name] = { DataType: value.DataType ?? 'String', StringValue: value.StringValue ?? '' };
  }
  await clients.sqs.send(
    new SendMessageCommand({
      QueueUrl: queueUrl(),
      MessageBody: message.Body,
      MessageAttributes: attributes,
    }),
  );
  await clients.sqs.send(
    new ChangeMessageVisibilityCommand({
      QueueUrl: queueUrl(),
      ReceiptHandle: message.ReceiptHandle!,
      VisibilityTimeout: 0,
    }),
  );
  assert.equal(await queueDepth(queueUrl()), 2);

  const runners = await Promise.all([stack.startRunner(), stack.startRunner()]);
  try {
    const job = await api.waitFor(id, 60_000);
    assert.equal(job.status, 'succeeded', JSON.stringify(job.error));
    assert.equal(job.outputs.length, 1);
    // Both messages are handled and deleted: one ran the job, the other was a duplicate.
    await eventually(async () => {
      assert.equal(await queueDepth(queueUrl()), 0);
    }, 30_000);
    assert.equal(await queueDepth(dlqUrl()), dlqBefore);
    const started = runners.flatMap((r) => logLines(r, 'job started', id));
    assert.equal(started.length, 1, runners.map((r) => r.output()).join('\n'));
    await eventually(async () => {
      const handled = runners.flatMap((r) => logLines(r, 'message handled', id)).map((l) => l['outcome']);
      assert.ok(handled.includes('completed'), handled.join(','));
      assert.ok(handled.includes('duplicate'), handled.join(','));
    });
    const types = await eventTypes(id);
    assert.equal(types.filter((t) => t === 'generation.started').length, 1, types.join(','));
    assert.equal(types.filter((t) => t === 'generation.succeeded').length, 1, types.join(','));
    const listed = await clients.s3.send(
      new ListObjectsV2Command({
        Bucket: stack.runnerEnv[ENV.MEDIA_BUCKET]!,
        Prefix: outputPrefix(stack.apiKey.tenantId, id),
      }),
    );
    assert.equal(listed.KeyCount, 1, JSON.stringify(listed.Contents));
    await assertChargedOnce(job);
    assert.equal((await terminalDeliveries(id, 'generation.succeeded')).length, 1);
  } finally {
    for (const r of runners) assert.equal(await r.stop(), 0);
  }
});
