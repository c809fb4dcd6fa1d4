/**
 * Infrastructure faults end to end, with real processes and emulators:
 * A. the SQS/S3 emulator crashes (everything it held is lost) and comes back while one job runs
 *    and others are queued: the runner and the edge reconnect, the edge answers 503 + Retry-After
 *    meanwhile, and the reconciler re-enqueues what lost its message. Every job ends once,
 *    charged once, notified once.
 * B. DynamoDB errors and throttling injected on the wire between the edge and dynalite (a proxy:
 *    the SDK sees what AWS sends): every create answers 202 or 503 + Retry-After, never 500, and
 *    once the faults stop nothing is left charged without a job, queued without a message, or
 *    sent without a job.
 *
 * B injects its faults before the request reaches the table, as DynamoDB does for throttling.
 * A second run injects them after the write was applied (an answer lost on the way back:
 * ambiguous, as a 500 or a reset can be in AWS). SD3_FAULTS_EDGE_LOGS=1 shows the edge's logs.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, type TestContext, test } from 'node:test';
import { GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient, GetCommand, ScanCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { type Job, type JobRecord, TENANT_OPEN_RESERVATIONS } from '@sd3/shared';
import sharp from 'sharp';
import type { FaultStats } from '../../local/fault-proxy.js';
import { localClients } from '../../local/resources.js';
import { type LocalStack, startLocalStack } from '../../local/stack.js';
import { ApiClient, type ApiResponse } from './api-client.js';

let dir: string;
let stack: LocalStack;
let api: ApiClient;
let doc: DynamoDBDocumentClient;
let hooks: Server;
let hookUrl: string;
const runnerLines: string[] = [];
/** Webhook deliveries: event id, type and generation. */
const delivered: { id: string; type: string; generation: string }[] = [];

const INITIAL_BALANCE = 100_000_000; // millicredits
/** The reconciler's staleness threshold: a queued job or marker this old counts as lost. */
const STALE_AFTER_MS = 2_000;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sd3-e2e-faults-infra-'));
  hooks = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const event = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
        id: string;
        type: string;
        generation_id: string;
      };
      delivered.push({ id: event.id, type: event.type, generation: event.generation_id });
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((r) => hooks.listen(0, '127.0.0.1', r));
  hookUrl = `http://127.0.0.1:${(hooks.address() as AddressInfo).port}/hook`;
  stack = await startLocalStack({
    tinyModelDir: join(dir, 'tiny'),
    edgeLogs: process.env['SD3_FAULTS_EDGE_LOGS'] === '1',
    visibilityTimeoutSeconds: 4,
    edgeDynamoFaults: true,
    webhookRetryScheduleMs: [200, 500, 1000],
    // The sweep is driven by reconcileNow() here; the interval only backs it up.
    reconcilerIntervalMs: 60_000,
    reconcilerStaleAfterMs: STALE_AFTER_MS,
    runnerEnv: {
      SD3_RUNNER_VISIBILITY_TIMEOUT_SECONDS: '4',
      SD3_RUNNER_HEARTBEAT_INTERVAL_SECONDS: '1',
      SD3_RUNNER_RETRY_BACKOFF_SECONDS: '1',
      SD3_RUNNER_GRACE_SECONDS: '0',
    },
    onRunnerLine: (line) => runnerLines.push(line),
  });
  api = new ApiClient(stack.url, stack.apiKey.token);
  const { dynamodb } = localClients(stack.emulators);
  doc = DynamoDBDocumentClient.from(dynamodb);
  // A paying tenant, and a key whose limits let a burst of creates through.
  await doc.send(
    new UpdateCommand({
      TableName: stack.resources.tables.tenants,
      Key: { tenantId: stack.apiKey.tenantId },
      UpdateExpression: 'SET creditBalance = :b',
      ExpressionAttributeValues: { ':b': INITIAL_BALANCE },
    }),
  );
  await doc.send(
    new UpdateCommand({
      TableName: stack.resources.tables.keys,
      Key: { keyId: stack.apiKey.keyId },
      UpdateExpression: 'SET requestsPerMinute = :r, concurrentJobs = :c',
      ExpressionAttributeValues: { ':r': 100_000, ':c': 1_000 },
    }),
  );
});

after(async () => {
  await stack?.stop();
  doc?.destroy();
  await new Promise((r) => hooks?.close(r));
  await rm(dir, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function balance(): Promise<number> {
  const out = await doc.send(
    new GetCommand({
      TableName: stack.resources.tables.tenants,
      Key: { tenantId: stack.apiKey.tenantId },
      ConsistentRead: true,
    }),
  );
  return out.Item!['creditBalance'] as number;
}

/**
 * Credit reservations still open on the tenant once the reconciler has passed its staleness
 * threshold: each is a quote taken without (yet) a job.
 */
async function openReservationsAfterSweep(): Promise<string[]> {
  await sleep(STALE_AFTER_MS + 100);
  addReport(await stack.reconcileNow());
  const out = await doc.send(
    new GetCommand({
      TableName: stack.resources.tables.tenants,
      Key: { tenantId: stack.apiKey.tenantId },
      ConsistentRead: true,
    }),
  );
  return [...((out.Item?.[TENANT_OPEN_RESERVATIONS] as Set<string> | undefined) ?? [])];
}

const millicredits = (credits: string | null | undefined) => Math.round(Number(credits ?? '0') * 1000);

/** The job's recorded event types (SSE replay of a terminal job). */
async function eventTypes(id: string): Promise<string[]> {
  const text = String((await api.request<string>('GET', `/v1/generations/${id}/events`)).body);
  return text
    .split('\n')
    .filter((l) => l.startsWith('data:'))
    .map((l) => (JSON.parse(l.slice(5)) as { type: string }).type);
}

const TERMINAL = new Set(['succeeded', 'failed', 'canceled']);

/** Runs the reconciler until every job is terminal (what its interval would do, sooner). */
async function settleAll(ids: string[], timeoutMs: number): Promise<Map<string, Job>> {
  const deadline = Date.now() + timeoutMs;
  const done = new Map<string, Job>();
  for (;;) {
    for (const id of ids) {
      if (done.has(id)) continue;
      const res = await api.get(id);
      assert.equal(res.status, 200, JSON.stringify(res.body));
      if (TERMINAL.has(res.body.status)) done.set(id, res.body);
    }
    if (done.size === ids.length) return done;
    if (Date.now() > deadline) {
      const stuck = ids.filter((id) => !done.has(id));
      throw new Error(
        `${stuck.length} jobs not terminal after ${timeoutMs} ms: ${stuck.slice(0, 5).join(', ')}`,
      );
    }
    addReport(await stack.reconcileNow());
    await sleep(300);
  }
}

/** What the reconciler did over the test's runs. */
const reconciled: Record<string, number> = {};
function resetReconciled(): void {
  for (const k of Object.keys(reconciled)) delete reconciled[k];
}
function addReport(report: object): void {
  for (const [k, v] of Object.entries(report)) {
    if (typeof v === 'number' && v > 0) reconciled[k] = (reconciled[k] ?? 0) + v;
  }
}

/** Both queues of the model drained (duplicates deleted by the runner included). */
async function waitQueuesEmpty(timeoutMs: number): Promise<void> {
  const { sqs } = localClients(stack.emulators);
  const q = stack.resources.queues[stack.model.id]!;
  const deadline = Date.now() + timeoutMs;
  try {
    for (;;) {
      const counts: Record<string, number> = {};
      for (const [name, url] of [
        ['jobs', q.url],
        ['dlq', q.dlqUrl],
      ] as const) {
        const a = await sqs.send(
          new GetQueueAttributesCommand({
            QueueUrl: url,
            AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
          }),
        );
        counts[name] =
          Number(a.Attributes?.ApproximateNumberOfMessages ?? 0) +
          Number(a.Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0);
      }
      if (counts['jobs'] === 0 && counts['dlq'] === 0) return;
      if (Date.now() > deadline) throw new Error(`queues not empty: ${JSON.stringify(counts)}`);
      await sleep(200);
    }
  } finally {
    sqs.destroy();
  }
}

/** Waits until each job has its terminal webhook (or the time is up), then a little for duplicates. */
async function waitForHooks(jobs: Map<string, Job>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const has = (j: Job) => delivered.some((d) => d.generation === j.id && d.type === `generation.${j.status}`);
  while (Date.now() < deadline && ![...jobs.values()].every(has)) {
    addReport(await stack.reconcileNow());
    await sleep(300);
  }
  await sleep(1_000);
}

function assertProblem503(res: ApiResponse<unknown>, what: string): Record<string, unknown> {
  assert.equal(res.status, 503, `${what}: ${JSON.stringify(res.body)}`);
  assert.equal(res.headers.get('content-type')?.split(';')[0], 'application/problem+json', what);
  const retryAfter = Number(res.headers.get('retry-after'));
  assert.ok(
    Number.isInteger(retryAfter) && retryAfter >= 1,
    `${what}: Retry-After ${res.headers.get('retry-after')}`,
  );
  const body = res.body as Record<string, unknown>;
  assert.equal(body['status'], 503, what);
  assert.ok(typeof body['code'] === 'string' && typeof body['detail'] === 'string', what);
  return body;
}

function notFoundDrops(): number {
  return runnerLines.filter((l) => l.includes('job not found')).length;
}

test('the SQS/S3 emulator crashes mid-run: every job ends once, charged once, notified once', async (t) => {
  resetReconciled();
  const runner = stack.runner!;
  const startBalance = await balance();
  const dropsBefore = notFoundDrops();
  // One runner: a slow job holds it while the others queue behind it.
  const slow = await api.create({
    prompt: 'slow',
    width: 512,
    height: 512,
    steps: 400,
    webhook_url: hookUrl,
  });
  assert.equal(slow.status, 202, JSON.stringify(slow.body));
  await api.waitFor(slow.body.id, 60_000, (j) => j.status === 'running' && (j.progress?.step ?? 0) >= 1);
  const queued: string[] = [];
  for (let i = 0; i < 3; i++) {
    const res = await api.create({
      prompt: `queued ${i}`,
      width: 64,
      height: 64,
      steps: 2,
      webhook_url: hookUrl,
    });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    assert.equal(res.body.status, 'queued');
    queued.push(res.body.id);
  }
  const png = await sharp({
    create: { width: 64, height: 64, channels: 3, background: { r: 9, g: 99, b: 199 } },
  })
    .png()
    .toBuffer();
  const refused: string[] = [];
  await stack.restartQueueEmulator({
    async whileDown() {
      // A create reaches the queue step and cannot send: 503, its job failed and refunded.
      const create = await api.create({
        prompt: 'during the outage',
        width: 64,
        height: 64,
        steps: 1,
        webhook_url: hookUrl,
      });
      const body = assertProblem503(create, 'create while SQS is down');
      assert.equal(body['code'], 'enqueue_failed');
      assert.equal(typeof body['generation_id'], 'string');
      refused.push(body['generation_id'] as string);
      // An image-to-image create fails storing its input in S3: 503, nothing written.
      const img = await api.create({
        prompt: 'image during the outage',
        width: 64,
        height: 64,
        steps: 1,
        image: png.toString('base64'),
      });
      assert.equal(assertProblem503(img, 'create with an image while S3 is down')['code'], 'unavailable');
      // Reads need only DynamoDB.
      assert.equal((await api.get(slow.body.id)).status, 200);
    },
  });
  // After the restart the edge serves creates again (its SDK clients reconnect on their own).
  const later = await api.create({
    prompt: 'after the outage',
    width: 64,
    height: 64,
    steps: 1,
    webhook_url: hookUrl,
  });
  assert.equal(later.status, 202, JSON.stringify(later.body));
  const accepted = [slow.body.id, ...queued, later.body.id];
  const all = [...accepted, ...refused];

  const jobs = await settleAll(all, 120_000);
  for (const id of accepted) {
    const job = jobs.get(id)!;
    assert.equal(job.status, 'succeeded', `${id}: ${JSON.stringify(job.error)}`);
    const types = await eventTypes(id);
    assert.equal(types.filter((t) => t === 'generation.succeeded').length, 1, `${id}: ${types.join(',')}`);
    assert.equal(types.filter((t) => TERMINAL.has(t.replace('generation.', ''))).length, 1, types.join(','));
    assert.equal(job.cost?.charge, job.cost?.quote);
  }
  for (const id of refused) {
    const job = jobs.get(id)!;
    assert.equal(job.status, 'failed');
    assert.equal(job.error?.code, 'enqueue_failed');
    assert.equal(millicredits(job.cost?.charge), 0);
  }
  assert.deepEqual(await openReservationsAfterSweep(), [], 'no open reservation markers');
  const charged = [...jobs.values()].reduce((sum, j) => sum + millicredits(j.cost?.charge), 0);
  assert.equal(await balance(), startBalance - charged);
  await waitQueuesEmpty(30_000);
  await waitForHooks(jobs, 20_000);
  for (const job of jobs.values()) {
    const terminal = delivered.filter((d) => d.generation === job.id && d.type.startsWith('generation.'));
    assert.deepEqual(
      terminal.map((d) => d.type),
      [`generation.${job.status}`],
      `${job.id}: one terminal webhook`,
    );
  }
  assert.equal(notFoundDrops(), dropsBefore, 'no message without a job');
  t.diagnostic(`reconciler: ${JSON.stringify(reconciled)}`);
  // The runner rode the outage out: same process, healthy, it logged its reconnects.
  assert.equal(runner.child.exitCode, null);
  assert.equal(runner.child.signalCode, null);
  assert.equal((await fetch(runner.healthUrl)).status, 200);
});

/** Fault mix for B: draws of ~9% that repeat for 3 requests of the operation (outlasting the SDK's retries). */
const FAULT_RULE = { rate: 0.09, burst: 3 } as const;
const PARALLEL = 12;

test('DynamoDB throttling and errors at the edge: 202 or 503, never 500, nothing lost or charged twice', (t) =>
  dynamoFaultRun(t, 'before', 120));

// The ambiguous case: the write was applied and the answer lost, so the SDK retries a write that
// already happened (a reservation must not be taken twice, a job put must be recognised).
test('DynamoDB answers lost after the write applied: nothing charged twice, nothing lost', (t) =>
  dynamoFaultRun(t, 'after', 60));

async function dynamoFaultRun(t: TestContext, when: 'before' | 'after', creates: number): Promise<void> {
  resetReconciled();
  const faults = stack.dynamoFaults!;
  const startBalance = await balance();
  const dropsBefore = notFoundDrops();
  const since = Date.now();
  const before = faults.stats();
  const statuses: Record<string, number> = {};
  const accepted: string[] = [];
  const refused: string[] = [];
  const create = async (i: number) => {
    const res = await api.create({
      prompt: `fault ${i}`,
      width: 64,
      height: 64,
      steps: 1,
      webhook_url: hookUrl,
    });
    if (res.status === 202) accepted.push(res.body.id);
    const body = res.status === 202 ? {} : assertProblem503(res, `create ${i}`);
    const id = body['generation_id'];
    if (typeof id === 'string') refused.push(id);
    const outcome = `${res.status}${typeof id === 'string' ? '+id' : ''}`;
    statuses[outcome] = (statuses[outcome] ?? 0) + 1;
    return res.status;
  };
  // First each write the create path makes, failing every time (past the SDK's retries): a 503.
  for (const operation of when === 'before' ? ['GetItem', 'UpdateItem', 'PutItem'] : []) {
    faults.setRule({ rate: 1, operations: [operation], faults: ['throttling', 'internal', 'reset'] });
    try {
      assert.equal(await create(-1), 503, `${operation} failing`);
    } finally {
      faults.setRule(null);
    }
  }
  // Then a random mix over every operation.
  faults.setRule({ ...FAULT_RULE, when });
  let next = 0;
  const worker = async () => {
    while (next < creates) await create(next++);
  };
  try {
    await Promise.all(Array.from({ length: PARALLEL }, worker));
  } finally {
    faults.setRule(null);
  }
  const after = faults.stats();
  const injected = diffStats(before, after);
  t.diagnostic(
    `creates ${JSON.stringify(statuses)} in ${Date.now() - since} ms; DynamoDB faults ${JSON.stringify(injected)}`,
  );
  assert.equal(
    accepted.length +
      Object.entries(statuses)
        .filter(([k]) => k.startsWith('503'))
        .reduce((n, [, v]) => n + v, 0),
    creates + (when === 'before' ? 3 : 0),
    JSON.stringify(statuses),
  );
  assert.ok(injected.injected > 0.15 * injected.requests, JSON.stringify(injected));

  // Every job the edge wrote in this test, whether or not the client learned its id.
  const { Items = [] } = await doc.send(
    new ScanCommand({
      TableName: stack.resources.tables.jobs,
      ConsistentRead: true,
      FilterExpression: 'tenantId = :t AND createdAt >= :since',
      ExpressionAttributeValues: { ':t': stack.apiKey.tenantId, ':since': since },
    }),
  );
  const written = (Items as JobRecord[]).map((r) => r.jobId);
  // A 503 may name a job whose write did not land (the edge could not tell): it must then be
  // absent for good, never written later.
  const never = new Set<string>();
  for (const id of refused) {
    if (!written.includes(id) && (await api.get(id)).status === 404) never.add(id);
  }
  const known = new Set([...accepted, ...refused.filter((id) => !never.has(id))]);
  const jobs = await settleAll([...new Set([...written, ...known])], 180_000);
  t.diagnostic(
    `${jobs.size} jobs terminal (${written.length} written, ${known.size} ids known to the client) after ${Date.now() - since} ms`,
  );
  for (const id of accepted) {
    const job = jobs.get(id)!;
    assert.equal(job.status, 'succeeded', `${id}: ${JSON.stringify(job.error)}`);
    assert.equal(job.cost?.charge, job.cost?.quote);
  }
  for (const job of jobs.values()) {
    const types = await eventTypes(job.id);
    assert.equal(types.filter((t) => TERMINAL.has(t.replace('generation.', ''))).length, 1, types.join(','));
    // A job the client never heard of must not have cost anything.
    if (!known.has(job.id))
      assert.equal(millicredits(job.cost?.charge), 0, `${job.id} unknown to the client`);
    if (job.status !== 'succeeded')
      assert.equal(millicredits(job.cost?.charge), 0, `${job.id} ${job.status}`);
  }
  assert.deepEqual(await openReservationsAfterSweep(), [], 'no open reservation markers');
  const charged = [...jobs.values()].reduce((sum, j) => sum + millicredits(j.cost?.charge), 0);
  assert.equal(await balance(), startBalance - charged, 'balance = start - sum of charges');
  await waitQueuesEmpty(30_000);
  assert.equal(notFoundDrops(), dropsBefore, 'no message without a job');
  await waitForHooks(jobs, 30_000);
  t.diagnostic(`reconciler: ${JSON.stringify(reconciled)}`);
  for (const job of jobs.values()) {
    const terminal = delivered.filter((d) => d.generation === job.id);
    assert.ok(terminal.length <= 1, `${job.id}: at most one webhook, got ${JSON.stringify(terminal)}`);
    if (accepted.includes(job.id)) assert.equal(terminal.length, 1, `${job.id}: its succeeded webhook`);
  }
}

function diffStats(a: FaultStats, b: FaultStats) {
  return {
    requests: b.requests - a.requests,
    injected: b.injected - a.injected,
    ambiguous: b.ambiguous - a.ambiguous,
    byFault: Object.fromEntries(
      Object.entries(b.byFault).map(([k, v]) => [k, v - (a.byFault[k as keyof FaultStats['byFault']] ?? 0)]),
    ),
    byOperation: Object.fromEntries(
      Object.entries(b.byOperation).map(([k, v]) => [k, v - (a.byOperation[k] ?? 0)]),
    ),
  };
}
