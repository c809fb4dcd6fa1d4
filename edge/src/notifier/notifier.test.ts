import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { type DeliveryRecord, eventsQueueMessage, type JobEvent, NOTIFIER_ENV } from '@sd3/shared';
import { SqsEventPublisher } from '../adapters/aws/sqs-event-publisher.js';
import { type EdgeStack, startEdgeStack } from '../test-support/edge-stack.js';
import { type AwsNotifier, createAwsNotifier, type NotifierLoop, startNotifierLoop } from './aws.js';
import { createNotifierHandler } from './lambda-handler.js';
import { handleEventMessage, type NotifierDeps } from './notifier.js';

interface Received {
  path: string;
  headers: IncomingMessage['headers'];
  body: string;
}

/** A local webhook receiver; `respond` picks the status (and headers) per request. */
async function startReceiver(
  respond: (n: number, req: Received) => { status: number; headers?: Record<string, string> },
): Promise<{ url: string; received: Received[]; close(): Promise<void> }> {
  const received: Received[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const r = { path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
      received.push(r);
      const out = respond(received.length, r);
      res.writeHead(out.status, out.headers).end('ok');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    received,
    close: () => new Promise((r) => server.close(() => r())),
  };
}

/** An independent Standard Webhooks verifier, written from the spec text with node:crypto. */
function verifyPerSpec(secret: string, r: Received): boolean {
  const id = r.headers['webhook-id'];
  const ts = r.headers['webhook-timestamp'];
  const sigHeader = r.headers['webhook-signature'];
  if (typeof id !== 'string' || typeof ts !== 'string' || typeof sigHeader !== 'string') return false;
  if (Math.abs(Date.now() / 1000 - Number(ts)) > 300) return false;
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  const expected = createHmac('sha256', key).update(`${id}.${ts}.${r.body}`).digest('base64');
  return sigHeader.split(' ').some((s) => s === `v1,${expected}`);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 8000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

let s: EdgeStack;
let notifier: AwsNotifier;
let loop: NotifierLoop | null = null;
let publisher: SqsEventPublisher;
const closers: (() => Promise<void>)[] = [];

before(async () => {
  s = await startEdgeStack();
  notifier = createAwsNotifier({
    ...s.env,
    [NOTIFIER_ENV.RETRY_SCHEDULE_MS]: '[300, 300, 300]',
    [NOTIFIER_ENV.TIMEOUT_MS]: '2000',
    [NOTIFIER_ENV.ALLOW_LOCAL_HTTP]: 'true',
  });
  publisher = new SqsEventPublisher(s.sqs, s.resources.eventsQueueUrl);
  loop = startNotifierLoop({ sqs: notifier.sqs, queueUrl: notifier.queueUrl, deps: notifier.deps });
});

after(async () => {
  await loop?.stop();
  for (const close of closers) await close();
  notifier.destroy();
  await s.stop();
});

async function createJob(token: string, extra: Record<string, unknown>): Promise<string> {
  const res = await s.call('POST', '/v1/generations', {
    token,
    json: { prompt: 'a lighthouse', model: 'tiny', ...extra },
  });
  assert.equal(res.status, 202, await res.clone().text());
  return ((await res.json()) as { id: string }).id;
}

/** Finishes the job through the fake runner and returns its terminal event. */
async function succeed(jobId: string): Promise<JobEvent> {
  await s.runner.start(jobId);
  await s.runner.succeed(jobId);
  const record = await s.runner.getRecord(jobId);
  return record.events[record.events.length - 1]!;
}

async function deliveries(jobId: string, token = s.a.token): Promise<DeliveryRecord[]> {
  const res = await s.call('GET', `/v1/generations/${jobId}/webhooks`, { token });
  assert.equal(res.status, 200);
  return ((await res.json()) as { data: DeliveryRecord[] }).data;
}

async function publishEvent(jobId: string, event: JobEvent): Promise<string> {
  const record = await s.runner.getRecord(jobId);
  const message = eventsQueueMessage(record, event);
  await publisher.publish(message);
  return JSON.stringify(message);
}

test('a succeeded job is delivered once, signed per Standard Webhooks with the tenant secret', async () => {
  const rx = await startReceiver(() => ({ status: 204 }));
  closers.push(rx.close);
  const jobId = await createJob(s.a.token, { webhook_url: rx.url });
  const event = await succeed(jobId);
  assert.equal(event.type, 'generation.succeeded');
  const body = await publishEvent(jobId, event);
  const [d] = await until('delivery', async () => {
    const list = await deliveries(jobId);
    return list[0]?.state === 'delivered' ? list : undefined;
  });
  assert.equal(rx.received.length, 1, 'only the terminal event (the default filter skips queued/started)');
  const got = rx.received[0]!;
  assert.equal(got.path, '/hook');
  assert.equal(got.headers['webhook-id'], event.id);
  assert.equal(got.headers['content-type'], 'application/json');
  assert.ok(verifyPerSpec(s.a.webhookSecret, got), 'signature verifies with the spec algorithm');
  assert.ok(!verifyPerSpec(s.b.webhookSecret, got), 'another tenant secret does not verify');
  const tampered = { ...got, body: got.body.replace('succeeded', 'failed') };
  assert.ok(!verifyPerSpec(s.a.webhookSecret, tampered));
  assert.deepEqual(JSON.parse(got.body), event);
  assert.equal(d!.attempts.length, 1);
  assert.equal(d!.attempts[0]!.status_code, 204);
  assert.equal(d!.event_id, event.id);

  // A redelivered queue message does not post again.
  assert.equal(await handleEventMessage(body, notifier.deps), 'skipped');
  await sleep(400);
  assert.equal(rx.received.length, 1);
});

test('a receiver failing twice then answering 200 gets exactly one success after 3 attempts', async () => {
  const rx = await startReceiver((n) => ({ status: n <= 2 ? 500 : 200 }));
  closers.push(rx.close);
  const jobId = await createJob(s.a.token, { webhook_url: rx.url });
  await publishEvent(jobId, await succeed(jobId));
  const [d] = await until('delivered after retries', async () => {
    const list = await deliveries(jobId);
    return list[0]?.state === 'delivered' ? list : undefined;
  });
  assert.deepEqual(
    d!.attempts.map((a) => [a.attempt, a.status_code]),
    [
      [1, 500],
      [2, 500],
      [3, 200],
    ],
  );
  assert.equal(d!.next_attempt_at, null);
  assert.ok(d!.delivered_at);
  await sleep(1000);
  assert.equal(rx.received.length, 3, 'nothing is sent after the success');
  assert.equal(new Set(rx.received.map((r) => r.headers['webhook-id'])).size, 1, 'stable id across retries');
});

test('a receiver that keeps failing is given up after the schedule; the log says failed', async () => {
  const rx = await startReceiver(() => ({ status: 503 }));
  closers.push(rx.close);
  const jobId = await createJob(s.a.token, { webhook_url: rx.url });
  await publishEvent(jobId, await succeed(jobId));
  const [d] = await until('given up', async () => {
    const list = await deliveries(jobId);
    return list[0]?.state === 'failed' ? list : undefined;
  });
  assert.equal(d!.attempts.length, 4, 'three retries after the first attempt');
  assert.equal(rx.received.length, 4);
});

test('a redirect is a failure and is not followed', async () => {
  const rx = await startReceiver((_n, r) =>
    r.path === '/hook' ? { status: 302, headers: { location: '/elsewhere' } } : { status: 200 },
  );
  closers.push(rx.close);
  const jobId = await createJob(s.a.token, { webhook_url: rx.url });
  const event = await succeed(jobId);
  const record = await s.runner.getRecord(jobId);
  const deps: NotifierDeps = { ...notifier.deps, retryScheduleMs: [] };
  const outcome = await handleEventMessage(JSON.stringify(eventsQueueMessage(record, event)), deps);
  assert.equal(outcome, 'failed');
  assert.deepEqual(
    rx.received.map((r) => r.path),
    ['/hook'],
  );
  const [d] = await deliveries(jobId);
  assert.equal(d!.attempts[0]!.status_code, 302);
  assert.match(d!.attempts[0]!.error ?? '', /redirect/);
});

test('SSRF: private, metadata and plain-http targets are refused and never retried', async () => {
  for (const url of [
    'https://10.0.0.1/hook',
    'https://169.254.169.254/latest/meta-data',
    'https://localhost/x',
  ]) {
    const jobId = await createJob(s.a.token, { webhook_url: url });
    const event = await succeed(jobId);
    const record = await s.runner.getRecord(jobId);
    const outcome = await handleEventMessage(
      JSON.stringify(eventsQueueMessage(record, event)),
      notifier.deps,
    );
    assert.equal(outcome, 'failed', url);
    const [d] = await deliveries(jobId);
    assert.equal(d!.state, 'failed');
    assert.equal(d!.attempts.length, 1);
    assert.equal(d!.attempts[0]!.status_code, null);
    assert.match(d!.attempts[0]!.error ?? '', /refused/, url);
  }
  // Without local mode, http://127.0.0.1 is refused too (before any connection).
  const rx = await startReceiver(() => ({ status: 200 }));
  closers.push(rx.close);
  const jobId = await createJob(s.a.token, { webhook_url: rx.url });
  const event = await succeed(jobId);
  const record = await s.runner.getRecord(jobId);
  const strict: NotifierDeps = { ...notifier.deps, allowLocalHttp: false };
  assert.equal(await handleEventMessage(JSON.stringify(eventsQueueMessage(record, event)), strict), 'failed');
  assert.equal(rx.received.length, 0);
  const [d] = await deliveries(jobId);
  assert.match(d!.attempts[0]!.error ?? '', /https/);
});

test('webhook_events filters what is sent; the default is terminal events only', async () => {
  const rx = await startReceiver(() => ({ status: 200 }));
  closers.push(rx.close);
  const jobId = await createJob(s.a.token, { webhook_url: rx.url, webhook_events: ['generation.started'] });
  await s.runner.start(jobId);
  const started = (await s.runner.getRecord(jobId)).events[1]!;
  assert.equal(started.type, 'generation.started');
  const terminal = await succeed2(jobId);
  const record = await s.runner.getRecord(jobId);
  const send = (e: JobEvent) =>
    handleEventMessage(JSON.stringify(eventsQueueMessage(record, e)), notifier.deps);
  assert.equal(await send(started), 'delivered');
  assert.equal(await send(terminal), 'skipped');
  assert.equal(await send(record.events[0]!), 'skipped');
  assert.deepEqual(
    rx.received.map((r) => JSON.parse(r.body).type),
    ['generation.started'],
  );
  const list = await deliveries(jobId);
  assert.deepEqual(
    list.map((d) => d.event_type),
    ['generation.started'],
  );

  async function succeed2(id: string): Promise<JobEvent> {
    await s.runner.succeed(id);
    const r = await s.runner.getRecord(id);
    return r.events[r.events.length - 1]!;
  }
});

test('resend delivers the terminal event again in a new round; other tenants get 404', async () => {
  const rx = await startReceiver(() => ({ status: 200 }));
  closers.push(rx.close);
  const jobId = await createJob(s.a.token, { webhook_url: rx.url });
  const event = await succeed(jobId);
  await publishEvent(jobId, event);
  await until('first delivery', async () =>
    (await deliveries(jobId))[0]?.state === 'delivered' ? 1 : undefined,
  );

  for (const [method, path] of [
    ['GET', `/v1/generations/${jobId}/webhooks`],
    ['POST', `/v1/generations/${jobId}/webhooks/resend`],
  ] as const) {
    const res = await s.call(method, path, { token: s.b.token });
    assert.equal(res.status, 404, `${method} ${path} as another tenant`);
  }
  const readOnly = await s.call('POST', `/v1/generations/${jobId}/webhooks/resend`, { token: s.aRead.token });
  assert.equal(readOnly.status, 403);
  const unknown = await s.call('POST', `/v1/generations/${jobId}/webhooks/resend`, {
    token: s.a.token,
    json: { event_id: `${jobId}.9999` },
  });
  assert.equal(unknown.status, 400);

  const res = await s.call('POST', `/v1/generations/${jobId}/webhooks/resend`, { token: s.a.token });
  assert.equal(res.status, 202, await res.clone().text());
  const body = (await res.json()) as DeliveryRecord;
  assert.equal(body.round, 2);
  assert.equal(body.event_id, event.id);
  const [d] = await until('second delivery', async () => {
    const list = await deliveries(jobId);
    return list[0]?.attempts.length === 2 && list[0].state === 'delivered' ? list : undefined;
  });
  assert.equal(d!.round, 2);
  assert.equal(rx.received.length, 2);
  assert.equal(rx.received[1]!.headers['webhook-id'], event.id, 'same id: receivers can dedupe');
  assert.ok(verifyPerSpec(s.a.webhookSecret, rx.received[1]!));
});

test('a job without webhook_url sends nothing and cannot be resent', async () => {
  const jobId = await createJob(s.a.token, {});
  const event = await succeed(jobId);
  const record = await s.runner.getRecord(jobId);
  assert.equal(
    await handleEventMessage(JSON.stringify(eventsQueueMessage(record, event)), notifier.deps),
    'skipped',
  );
  const res = await s.call('POST', `/v1/generations/${jobId}/webhooks/resend`, { token: s.a.token });
  assert.equal(res.status, 422);
  assert.deepEqual(await deliveries(jobId), []);
});

test('a message naming another tenant than the job is dropped', async () => {
  const rx = await startReceiver(() => ({ status: 200 }));
  closers.push(rx.close);
  const jobId = await createJob(s.a.token, { webhook_url: rx.url });
  const event = await succeed(jobId);
  const record = await s.runner.getRecord(jobId);
  const forged = { ...eventsQueueMessage(record, event), tenant_id: s.b.tenantId };
  assert.equal(await handleEventMessage(JSON.stringify(forged), notifier.deps), 'skipped');
  assert.equal(await handleEventMessage('not json', notifier.deps), 'invalid');
  assert.equal(rx.received.length, 0);
});

test('the Lambda handler reports only the messages that threw as batch item failures', async () => {
  const rx = await startReceiver(() => ({ status: 200 }));
  closers.push(rx.close);
  const jobId = await createJob(s.a.token, { webhook_url: rx.url });
  const event = await succeed(jobId);
  const record = await s.runner.getRecord(jobId);
  const good = JSON.stringify(eventsQueueMessage(record, event));
  const broken = JSON.stringify({ ...eventsQueueMessage(record, event), job_id: 'gen_BROKEN' });
  const handler = createNotifierHandler({
    ...notifier.deps,
    jobs: {
      get: async (id) => {
        if (id === 'gen_BROKEN') throw new Error('DynamoDB is down');
        return notifier.deps.jobs.get(id);
      },
    },
  });
  const out = await handler({
    Records: [
      { messageId: 'm1', body: good },
      { messageId: 'm2', body: broken },
    ],
  });
  assert.deepEqual(out, { batchItemFailures: [{ itemIdentifier: 'm2' }] });
  assert.equal(rx.received.length, 1);
});
