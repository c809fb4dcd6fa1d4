/**
 * Each sweep against the emulators: the broken state is made the way a crash leaves it (a store
 * that fails at the wrong moment, a purged queue, a runner that died), then the reconciler runs
 * twice: the first run repairs it once, the second changes nothing, and the money is exact.
 */
import assert from 'node:assert/strict';
import { afterEach, test } from 'node:test';
import { PurgeQueueCommand, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { GetCommand, PutCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import {
  EDGE_ENV,
  generateApiKey,
  hashSecret,
  type JobRecord,
  type KeyRecord,
  type ModelInfo,
  nextEvent,
  parseReservationMarker,
  settlementFields,
  TABLES,
  type TenantRecord,
  terminalCostData,
  usageSortKey,
} from '@sd3/shared';
import { DynamoJobStore } from '../adapters/aws/dynamo-job-store.js';
import { silentLogger } from '../logger.js';
import { DynamoDeliveryStore } from '../notifier/delivery-store.js';
import type { BillingStore, JobQueue } from '../ports/index.js';
import { type EdgeStack, startEdgeStack, TEST_MODELS } from '../test-support/edge-stack.js';
import { createAwsReconciler } from './aws.js';
import type { ReconcileReport } from './report.js';

// tiny at its defaults: 64 x 64, 4 steps, 1 image -> ceil(1000 * 4096 * 4 / 1e6) = 17 millicredits.
const QUOTE = 17;
const BALANCE = 1000;
const STALE_MS = 60_000;
const PRICED: ModelInfo[] = TEST_MODELS.map((m) =>
  m.id === 'tiny' ? { ...m, price: { millicredits_per_megapixel_step: 1000 } } : m,
);

let stack: EdgeStack | undefined;
const cleanups: (() => void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) c();
  await stack?.stop();
  stack = undefined;
});

async function setup(maxResends = 2) {
  const s = await startEdgeStack();
  stack = s;
  const tenantId = 'ten_rec';
  await s.doc.send(
    new PutCommand({
      TableName: s.resources.tables.tenants,
      Item: {
        tenantId,
        name: 'reconciler',
        createdAt: Date.now(),
        creditBalance: BALANCE,
      } satisfies TenantRecord,
    }),
  );
  const { token, keyId, secret } = generateApiKey();
  await s.doc.send(
    new PutCommand({
      TableName: s.resources.tables.keys,
      Item: {
        keyId,
        tenantId,
        secretHash: await hashSecret(secret),
        scopes: ['generate', 'read'],
        name: 'rec',
        createdAt: Date.now(),
        concurrentJobs: 100,
      } satisfies KeyRecord,
    }),
  );
  // The reconciler's clock runs ahead on demand: staleness without sleeping, and no race with a
  // slow machine between making a state and checking it is not stale yet.
  let ahead = 0;
  const aws = createAwsReconciler(s.env, {
    logger: silentLogger,
    clock: { now: () => Date.now() + ahead },
    config: { staleAfterMs: STALE_MS, maxResends },
  });
  /** Lets everything made or sent so far go stale, as seen by the reconciler. */
  const ageOut = () => {
    ahead += STALE_MS + 1000;
  };
  cleanups.push(() => aws.destroy());
  const priced = { [EDGE_ENV.MODELS]: JSON.stringify(PRICED) };
  const post = async (app: EdgeStack['app'], body: Record<string, unknown> = {}) =>
    app.request('/v1/generations', {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'a lighthouse', model: 'tiny', ...body }),
    });
  const tenant = async () =>
    (
      await s.doc.send(
        new GetCommand({ TableName: s.resources.tables.tenants, Key: { tenantId }, ConsistentRead: true }),
      )
    ).Item as TenantRecord;
  const jobsOf = async (): Promise<JobRecord[]> => {
    const out = await s.doc.send(
      new QueryCommand({
        TableName: s.resources.tables.jobs,
        IndexName: TABLES.jobs.byTenantIndex,
        KeyConditionExpression: 'tenantId = :t',
        ExpressionAttributeValues: { ':t': tenantId },
      }),
    );
    return (out.Items ?? []) as JobRecord[];
  };
  const eventsMessages = async () => {
    const out = await s.sqs.send(
      new ReceiveMessageCommand({ QueueUrl: s.resources.eventsQueueUrl, MaxNumberOfMessages: 10 }),
    );
    return (out.Messages ?? []).map((m) => JSON.parse(m.Body!) as { event: { id: string; type: string } });
  };
  const purge = (url: string) => s.sqs.send(new PurgeQueueCommand({ QueueUrl: url }));
  return {
    s,
    aws,
    ageOut,
    tenantId,
    priced,
    post,
    tenant,
    jobsOf,
    eventsMessages,
    purge,
    run: () => aws.reconciler.runOnce(),
  };
}

/** The report with only the named counts non-zero. */
function only(counts: Partial<ReconcileReport>): ReconcileReport {
  return {
    queuedResent: 0,
    runningResent: 0,
    lostFailed: 0,
    reservationsRefunded: 0,
    reservationsConfirmed: 0,
    settlementsCompleted: 0,
    eventsResent: 0,
    jobsClosed: 0,
    errors: 0,
    ...counts,
  };
}

test('a queued job whose message never went out is sent again, then failed and refunded after maxResends', async () => {
  const t = await setup(2);
  const { s } = t;
  // SQS refuses every send and DynamoDB refuses the enqueue_failed write: the job stays queued
  // with no message and no enqueuedAt, as after an edge crash between the put and the send.
  const realJobs = new DynamoJobStore(s.doc, s.resources.tables.jobs);
  const jobs = Object.assign(Object.create(realJobs) as DynamoJobStore, {
    failQueued: async () => {
      throw new Error('DynamoDB unavailable');
    },
  });
  const queue: JobQueue = {
    send: async () => {
      throw new Error('SQS unavailable');
    },
  };
  const broken = s.appWith(t.priced, { jobs, queue });
  const res = await t.post(broken.app, { webhook_url: 'https://hooks.example.com/x' });
  assert.equal(res.status, 503);
  const [job] = await t.jobsOf();
  assert.equal(job?.status, 'queued');
  assert.equal(job.enqueuedAt, undefined);
  assert.equal((await t.tenant()).creditBalance, BALANCE - QUOTE);

  assert.deepEqual(await t.run(), only({}), 'not stale yet: nothing happens');
  t.ageOut();
  assert.deepEqual(await t.run(), only({ queuedResent: 1 }));
  assert.deepEqual(await t.run(), only({}), 'the second run changes nothing');
  const sent = await s.runner.receiveAll('tiny');
  assert.equal(sent.length, 1);
  assert.equal(sent[0]!.payload.jobId, job.jobId);
  assert.equal(sent[0]!.attributes['jobId'], job.jobId);
  let record = await s.runner.getRecord(job.jobId);
  assert.equal(record.resends, 1);
  assert.ok(record.messageId);

  // The resent message is lost again (received and dropped above): one more resend, then failed.
  t.ageOut();
  assert.deepEqual(await t.run(), only({ queuedResent: 1 }));
  await s.runner.receiveAll('tiny');
  await t.purge(s.resources.eventsQueueUrl);
  t.ageOut();
  assert.deepEqual(await t.run(), only({ lostFailed: 1 }));
  record = await s.runner.getRecord(job.jobId);
  assert.equal(record.status, 'failed');
  assert.equal(record.error?.code, 'message_lost');
  assert.equal(record.charge, 0);
  assert.equal(record.refund, QUOTE);
  assert.equal(record.settlement, 'done');
  assert.equal(record.queuedModel, undefined);
  assert.equal(record.events.at(-1)?.type, 'generation.failed');
  assert.equal((await t.tenant()).creditBalance, BALANCE, 'refunded exactly once');
  const published = await t.eventsMessages();
  assert.deepEqual(
    published.map((m) => m.event.id),
    [record.events.at(-1)!.id],
    'the failed event went to the webhook queue',
  );
  assert.deepEqual(await t.run(), only({}));
  assert.equal((await t.tenant()).creditBalance, BALANCE);
});

test('a long backlog whose messages are all there is left alone', async () => {
  const t = await setup();
  const { app } = t.s.appWith(t.priced);
  for (let i = 0; i < 3; i++) assert.equal((await t.post(app)).status, 202);
  t.ageOut();
  assert.deepEqual(await t.run(), only({}));
  assert.equal((await t.s.runner.receiveAll('tiny')).length, 3, 'no duplicate sent');
});

test('a queue purged under queued jobs: each job is sent again once', async () => {
  const t = await setup();
  const { app } = t.s.appWith(t.priced);
  for (let i = 0; i < 2; i++) assert.equal((await t.post(app)).status, 202);
  await t.purge(t.s.resources.queues['tiny']!.url);
  t.ageOut();
  assert.deepEqual(await t.run(), only({ queuedResent: 2 }));
  assert.deepEqual(await t.run(), only({}));
  const sent = await t.s.runner.receiveAll('tiny');
  assert.deepEqual(sent.map((m) => m.payload.jobId).sort(), (await t.jobsOf()).map((j) => j.jobId).sort());
});

test('a running job whose runner died and whose message vanished is sent again', async () => {
  const t = await setup();
  const { s } = t;
  const { app } = s.appWith(t.priced);
  const res = await t.post(app);
  const { id } = (await res.json()) as { id: string };
  await s.runner.start(id);
  // The runner dies (its lease lapses) and the emulator loses the in-flight message.
  await t.purge(s.resources.queues['tiny']!.url);
  await s.doc.send(
    new UpdateCommand({
      TableName: s.resources.tables.jobs,
      Key: { jobId: id },
      UpdateExpression: 'SET leaseUntil = :past',
      ExpressionAttributeValues: { ':past': Date.now() - 1 },
    }),
  );
  t.ageOut();
  assert.deepEqual(await t.run(), only({ runningResent: 1 }));
  assert.deepEqual(await t.run(), only({}));
  const sent = await s.runner.receiveAll('tiny');
  assert.deepEqual(
    sent.map((m) => m.payload.jobId),
    [id],
  );
  const record = await s.runner.getRecord(id);
  assert.equal(record.status, 'running', 'the runner claim takes a running job with a lapsed lease');
  assert.equal(record.resends, 1);
});

test('a reservation whose job was never written is refunded once; one whose job exists is kept', async () => {
  const t = await setup();
  const { s } = t;
  // The job put fails and so does the release: DynamoDB went down mid-create.
  const realJobs = new DynamoJobStore(s.doc, s.resources.tables.jobs);
  const failingCreate = Object.assign(Object.create(realJobs) as DynamoJobStore, {
    create: async () => {
      throw new Error('DynamoDB unavailable');
    },
  });
  const base = s.appWith(t.priced);
  const billing = base.deps.billing as BillingStore;
  const noRelease = Object.assign(Object.create(billing) as BillingStore, {
    release: async () => {
      throw new Error('DynamoDB unavailable');
    },
    confirm: async () => {
      throw new Error('DynamoDB unavailable');
    },
  });
  const lost = s.appWith(t.priced, { jobs: failingCreate, billing: noRelease });
  assert.equal((await t.post(lost.app)).status, 500);
  // A second create succeeds but its marker is not dropped (the confirm fails too).
  const kept = s.appWith(t.priced, { billing: noRelease });
  assert.equal((await t.post(kept.app)).status, 202);
  const markers = [...((await t.tenant()).openReservations ?? [])];
  assert.equal(markers.length, 2);
  assert.equal((await t.tenant()).creditBalance, BALANCE - 2 * QUOTE);

  assert.deepEqual(await t.run(), only({}), 'fresh markers are left to their create');
  t.ageOut();
  assert.deepEqual(await t.run(), only({ reservationsRefunded: 1, reservationsConfirmed: 1 }));
  assert.deepEqual(await t.run(), only({}));
  const after = await t.tenant();
  assert.equal(after.openReservations, undefined, 'no marker left');
  assert.equal(after.creditBalance, BALANCE - QUOTE, 'only the job-less reservation came back');
  // The voided id can never become a job: a late create of it fails.
  const jobs = await t.jobsOf();
  assert.equal(jobs.length, 1);
  const lostId = markers.map((m) => parseReservationMarker(m)!.jobId).find((id) => id !== jobs[0]!.jobId)!;
  await assert.rejects(
    realJobs.create({ ...jobs[0]!, jobId: lostId }),
    (err: Error) => err.name === 'JobExistsError',
  );
});

test('a terminal job left with its settlement pending is settled once', async () => {
  const t = await setup();
  const { s } = t;
  const { app } = s.appWith(t.priced);
  const { id } = (await (await t.post(app)).json()) as { id: string };
  await s.runner.start(id);
  // The runner's terminal write, then it dies before the refund.
  const rec = await s.runner.getRecord(id);
  const error = { code: 'pipeline_failed', message: 'boom' };
  const fields = settlementFields(rec, 'failed');
  const completedAt = Date.now();
  await s.doc.send(
    new UpdateCommand({
      TableName: s.resources.tables.jobs,
      Key: { jobId: id },
      UpdateExpression:
        'SET #s = :failed, #e = :err, completedAt = :at, charge = :c, refund = :r, settlement = :p, events = list_append(events, :ev) REMOVE leaseUntil',
      ExpressionAttributeNames: { '#s': 'status', '#e': 'error' },
      ExpressionAttributeValues: {
        ':failed': 'failed',
        ':err': error,
        ':at': completedAt,
        ':c': 'charge' in fields ? fields.charge : -1,
        ':r': 'refund' in fields ? fields.refund : -1,
        ':p': 'pending',
        ':ev': [nextEvent(rec, 'generation.failed', { error, ...terminalCostData(rec, 'failed') })],
      },
    }),
  );
  assert.equal((await t.tenant()).creditBalance, BALANCE - QUOTE);
  t.ageOut();
  assert.deepEqual(await t.run(), only({ settlementsCompleted: 1, jobsClosed: 1 }));
  assert.deepEqual(await t.run(), only({}));
  assert.equal((await t.tenant()).creditBalance, BALANCE, 'refunded exactly once');
  const record = await s.runner.getRecord(id);
  assert.equal(record.settlement, 'done');
  assert.equal(record.openModel, undefined, 'closed: off the open index');
  const usage = await s.doc.send(
    new GetCommand({
      TableName: s.resources.tables.usage,
      Key: { tenantId: t.tenantId, sk: usageSortKey(completedAt, id) },
    }),
  );
  assert.equal(usage.Item?.['charge'], 0);
});

test('a terminal event that never reached the events queue is sent again, then the job is closed', async () => {
  const t = await setup();
  const { s } = t;
  const { app } = s.appWith(t.priced);
  const res = await t.post(app, { webhook_url: 'https://hooks.example.com/done' });
  const { id } = (await res.json()) as { id: string };
  // The fake runner finishes without publishing: the terminal event's send was lost.
  await s.runner.succeed(id);
  await t.purge(s.resources.eventsQueueUrl);
  t.ageOut();
  assert.deepEqual(await t.run(), only({ eventsResent: 1 }));
  assert.deepEqual(await t.run(), only({}), 'not again before staleAfter');
  const record = await s.runner.getRecord(id);
  const terminal = record.events.at(-1)!;
  assert.equal(terminal.type, 'generation.succeeded');
  assert.deepEqual(
    (await t.eventsMessages()).map((m) => m.event.id),
    [terminal.id],
  );
  assert.equal(record.eventResends, 1);
  // The notifier takes it: its claim creates the delivery record.
  const deliveries = new DynamoDeliveryStore(s.doc, s.resources.tables.jobs);
  const claim = await deliveries.claim(
    id,
    { eventId: terminal.id, eventType: terminal.type, url: record.webhookUrl! },
    1,
    1,
    Date.now(),
    30_000,
  );
  assert.equal(claim.kind, 'claimed');
  t.ageOut();
  assert.deepEqual(await t.run(), only({ jobsClosed: 1 }), 'logged: closed, not sent again');
  assert.deepEqual(await t.run(), only({}));
  assert.equal((await s.runner.getRecord(id)).openModel, undefined);
  assert.equal((await t.tenant()).creditBalance, BALANCE - QUOTE, 'succeeded: charged once');
});
