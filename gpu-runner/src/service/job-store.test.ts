import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { type JobRecord, nextEvent } from '@sd3/shared';
import { DynamoJobStore } from './job-store.js';
import { createLane, getJob, type Lane, type Stack, startStack, submitJob, TENANT } from './test-fixtures.js';

let stack: Stack;
let lane: Lane;

before(async () => {
  stack = await startStack();
  lane = await createLane(stack, 'store', 'unused-model-dir');
});
after(async () => {
  await stack?.stop();
});

const store = (runnerId: string, leaseMs = 60_000) =>
  new DynamoJobStore({ ddb: stack.clients.ddb, table: lane.res.tables.jobs, runnerId, leaseMs });

function assertDenseEvents(job: JobRecord): void {
  assert.deepEqual(
    job.events.map((e) => e.id),
    job.events.map((_, i) => `${job.jobId}.${String(i).padStart(4, '0')}`),
  );
}

test('two runners claiming one job at once: exactly one wins', async () => {
  const { jobId } = await submitJob(stack, lane);
  const [a, b] = await Promise.all([
    store('a').claim(jobId, { tenantId: TENANT }),
    store('b').claim(jobId, { tenantId: TENANT }),
  ]);
  assert.deepEqual([a.kind, b.kind].sort(), ['claimed', 'held']);
  const job = await getJob(stack, lane, jobId);
  assert.equal(job.status, 'running');
  assert.equal(job.attempts, 1);
  assert.equal(job.queuedModel, undefined);
  assert.deepEqual(
    job.events.map((e) => e.type),
    ['generation.queued', 'generation.started'],
  );
  assertDenseEvents(job);
});

test('an event appended by another writer in between does not break the sequence', async () => {
  const { jobId } = await submitJob(stack, lane);
  const a = store('a');
  assert.equal((await a.claim(jobId, { tenantId: TENANT })).kind, 'claimed');
  // Another writer appends behind the store's back: its cached record is now one event short.
  const current = await getJob(stack, lane, jobId);
  await stack.clients.ddb.send(
    new UpdateCommand({
      TableName: lane.res.tables.jobs,
      Key: { jobId },
      UpdateExpression: 'SET events = list_append(events, :e), cancelRequested = :t',
      ExpressionAttributeValues: {
        ':e': [nextEvent(current, 'generation.progress', { step: 0 })],
        ':t': true,
      },
    }),
  );
  const state = await a.progress(jobId, 1, 10);
  assert.deepEqual(state, { held: true, cancelRequested: true });
  assert.equal(await a.finishCanceled(jobId, 1, 10), true);
  const job = await getJob(stack, lane, jobId);
  assert.equal(job.status, 'canceled');
  assert.equal(job.events.length, 5);
  assertDenseEvents(job);
  // Terminal: nothing moves it any more.
  assert.equal(await a.finishSucceeded(jobId, [], {}), false);
  assert.equal((await store('b').claim(jobId, { tenantId: TENANT })).kind, 'terminal');
  assert.equal(await a.failNonTerminal(jobId, { code: 'x', message: 'y' }), 'terminal');
});

test('a lapsed lease lets another runner take over; the first one is fenced out', async () => {
  const { jobId } = await submitJob(stack, lane);
  // Long enough that the two checks below finish inside it even on a loaded machine.
  const a = store('a', 2000);
  const b = store('b');
  assert.equal((await a.claim(jobId, { tenantId: TENANT })).kind, 'claimed');
  assert.equal((await b.claim(jobId, { tenantId: TENANT })).kind, 'held');
  assert.equal(
    await b.failNonTerminal(jobId, { code: 'x', message: 'y' }),
    'held',
    'a live lease is respected',
  );
  await new Promise((r) => setTimeout(r, 2050));
  const taken = await b.claim(jobId, { tenantId: TENANT });
  assert.equal(taken.kind, 'claimed');
  assert.equal(taken.kind === 'claimed' && taken.record.attempts, 2);
  assert.deepEqual(await a.progress(jobId, 3, 10), { held: false, cancelRequested: false });
  assert.equal(await a.finishSucceeded(jobId, [], {}), false);
  assert.equal(await b.finishFailed(jobId, { code: 'input_invalid', message: 'width' }), true);
  const job = await getJob(stack, lane, jobId);
  assert.equal(job.status, 'failed');
  assert.equal(job.runnerId, 'b');
  assertDenseEvents(job);
});

test('releasing the lease keeps the job running but claimable at once, and fences the releaser', async () => {
  const { jobId } = await submitJob(stack, lane);
  const a = store('a');
  await a.claim(jobId, { tenantId: TENANT });
  assert.equal(await a.releaseLease(jobId), true);
  const released = await getJob(stack, lane, jobId);
  assert.equal(released.status, 'running');
  assert.equal(released.runnerId, undefined);
  assert.equal((await a.renew(jobId)).held, false);
  assert.equal((await store('b').claim(jobId, { tenantId: TENANT })).kind, 'claimed');
});

test('failNonTerminal fails queued jobs, never creates records, and claim checks the tenant', async () => {
  const { jobId } = await submitJob(stack, lane);
  assert.equal((await store('a').claim(jobId, { tenantId: 'someone_else' })).kind, 'mismatch');
  assert.equal(
    await store('a').failNonTerminal(jobId, { code: 'envelope_expired', message: 'old' }),
    'failed',
  );
  const job = await getJob(stack, lane, jobId);
  assert.equal(job.status, 'failed');
  assert.deepEqual(job.error, { code: 'envelope_expired', message: 'old' });
  assert.equal(job.queuedModel, undefined);
  assert.deepEqual(job.events.at(-1)?.data, { error: { code: 'envelope_expired', message: 'old' } });
  assert.equal(await store('a').failNonTerminal('gen_nope', { code: 'x', message: 'y' }), 'missing');
  await assert.rejects(getJob(stack, lane, 'gen_nope'), /not found/);
  assert.equal((await store('a').claim('gen_nope', { tenantId: TENANT })).kind, 'missing');
});
