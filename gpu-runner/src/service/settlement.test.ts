import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { GetCommand, PutCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { type JobRecord, spendMonthOf, type TenantRecord, type UsageRecord } from '@sd3/shared';
import { DynamoJobStore } from './job-store.js';
import { completeSettlement } from './settlement.js';
import { createLane, getJob, type Lane, type Stack, startStack, submitJob, TENANT } from './test-fixtures.js';

let stack: Stack;
let lane: Lane;

before(async () => {
  stack = await startStack();
  lane = await createLane(stack, 'settle', 'unused-model-dir');
  const tenant: TenantRecord = {
    tenantId: TENANT,
    name: 'settlement',
    createdAt: Date.now(),
    creditBalance: 0,
  };
  await stack.clients.ddb.send(new PutCommand({ TableName: lane.res.tables.tenants, Item: tenant }));
});
after(async () => {
  await stack?.stop();
});

const store = (runnerId: string) =>
  new DynamoJobStore({
    ddb: stack.clients.ddb,
    table: lane.res.tables.jobs,
    tenantsTable: lane.res.tables.tenants,
    usageTable: lane.res.tables.usage,
    runnerId,
    leaseMs: 60_000,
  });

async function usageItems(): Promise<UsageRecord[]> {
  const out = await stack.clients.ddb.send(
    new QueryCommand({
      TableName: lane.res.tables.usage,
      KeyConditionExpression: 'tenantId = :t',
      ExpressionAttributeValues: { ':t': TENANT },
      ConsistentRead: true,
    }),
  );
  return (out.Items ?? []) as UsageRecord[];
}

async function balance(): Promise<number> {
  const out = await stack.clients.ddb.send(
    new GetCommand({ TableName: lane.res.tables.tenants, Key: { tenantId: TENANT }, ConsistentRead: true }),
  );
  return (out.Item as TenantRecord).creditBalance!;
}

/** A claimed job whose 1000-millicredit quote was reserved (the balance already went down by it). */
async function reservedJob(runnerId: string): Promise<{ jobId: string; s: DynamoJobStore }> {
  const { jobId } = await submitJob(stack, lane, { record: { quote: 1000, reserved: true } });
  const s = store(runnerId);
  assert.equal((await s.claim(jobId, { tenantId: TENANT })).kind, 'claimed');
  return { jobId, s };
}

test('succeeded: charged the quote, nothing refunded; a duplicate finish changes nothing', async () => {
  const before = await balance();
  const { jobId, s } = await reservedJob('r-ok');
  assert.equal(await s.finishSucceeded(jobId, [], { total_ms: 5 }), true);
  assert.equal(await s.finishSucceeded(jobId, [], { total_ms: 5 }), false);
  const job = await getJob(stack, lane, jobId);
  assert.equal(job.charge, 1000);
  assert.equal(job.refund, 0);
  assert.equal(job.settlement, 'done');
  assert.deepEqual(job.events.at(-1)!.data['cost'], { quote: '1.000', charge: '1.000', currency: 'credits' });
  assert.equal(await balance(), before);
  const ledger = (await usageItems()).filter((u) => u.jobId === jobId);
  assert.equal(ledger.length, 1);
  assert.deepEqual(
    {
      status: ledger[0]!.status,
      charge: ledger[0]!.charge,
      quote: ledger[0]!.quote,
      keyId: ledger[0]!.keyId,
    },
    { status: 'succeeded', charge: 1000, quote: 1000, keyId: 'key_test' },
  );
});

test('failed: full refund, once, even when finished twice and redelivered', async () => {
  const before = await balance();
  const { jobId, s } = await reservedJob('r-fail');
  const error = { code: 'internal', message: 'boom' };
  const results = await Promise.all([
    s.finishFailed(jobId, error),
    store('r-other').finishFailed(jobId, error),
  ]);
  assert.deepEqual(results.sort(), [false, true]);
  // A redelivered message meets a terminal job.
  assert.equal((await store('r-late').claim(jobId, { tenantId: TENANT })).kind, 'terminal');
  assert.equal(await store('r-late').failNonTerminal(jobId, error), 'terminal');
  const job = await getJob(stack, lane, jobId);
  assert.equal(job.charge, 0);
  assert.equal(job.refund, 1000);
  assert.equal(job.settlement, 'done');
  assert.deepEqual(job.events.at(-1)!.data['cost'], { quote: '1.000', charge: '0.000', currency: 'credits' });
  assert.equal(await balance(), before + 1000);
});

test('canceled while running: charged for the steps that ran (rounded down), the rest refunded', async () => {
  const before = await balance();
  const { jobId, s } = await reservedJob('r-cancel');
  // 1 of 3 steps: floor(1000 / 3) = 333 charged, 667 back.
  assert.equal(await s.finishCanceled(jobId, 1, 3), true);
  const job = await getJob(stack, lane, jobId);
  assert.equal(job.charge, 333);
  assert.equal(job.refund, 667);
  const ledger = (await usageItems()).filter((u) => u.jobId === jobId);
  assert.deepEqual(
    ledger.map((u) => [u.status, u.steps, u.charge]),
    [['canceled', 1, 333]],
  );
  assert.deepEqual(job.events.at(-1)!.data['cost'], { quote: '1.000', charge: '0.333', currency: 'credits' });
  assert.equal(await balance(), before + 667);
});

test('a forged/expired job failed from queued is refunded in full', async () => {
  const before = await balance();
  const { jobId } = await submitJob(stack, lane, { record: { quote: 400, reserved: true } });
  assert.equal(await store('r-x').failNonTerminal(jobId, { code: 'input_invalid', message: 'x' }), 'failed');
  assert.equal((await getJob(stack, lane, jobId)).charge, 0);
  assert.equal(await balance(), before + 400);
});

test('a crash after the terminal write: the refund is completed by the redelivery, exactly once', async () => {
  const before = await balance();
  const { jobId, s } = await reservedJob('r-crash');
  // A store without the tenants table plays the runner that died right after the terminal write.
  const dying = new DynamoJobStore({
    ddb: stack.clients.ddb,
    table: lane.res.tables.jobs,
    runnerId: 'r-crash',
    leaseMs: 60_000,
  });
  assert.equal(await dying.finishFailed(jobId, { code: 'internal', message: 'x' }), true);
  let job: JobRecord = await getJob(stack, lane, jobId);
  assert.equal(job.settlement, 'pending');
  assert.equal(await balance(), before);
  // The refund is applied but the job not yet marked (a second crash between steps 1 and 2) ...
  await completeSettlement(
    stack.clients.ddb,
    { tenants: lane.res.tables.tenants, jobs: '-no-such-table-' },
    job,
  ).catch(() => {});
  assert.equal(await balance(), before + 1000);
  // ... then redeliveries and a stale copy of the pending record complete it without refunding again.
  await Promise.all([
    s.claim(jobId, { tenantId: TENANT }),
    store('r-2').claim(jobId, { tenantId: TENANT }),
    completeSettlement(
      stack.clients.ddb,
      { tenants: lane.res.tables.tenants, jobs: lane.res.tables.jobs, usage: lane.res.tables.usage },
      job,
    ),
  ]);
  job = await getJob(stack, lane, jobId);
  assert.equal(job.settlement, 'done');
  assert.equal(await balance(), before + 1000);
  // One ledger item, however many completed it.
  const items = (await usageItems()).filter((u) => u.jobId === jobId);
  assert.equal(items.length, 1);
  assert.equal(items[0]!.charge, 0);
});

test('monthly spend cap: a refund lowers the month counter once, and not after the month turned', async () => {
  const month = spendMonthOf(Date.now());
  const setCounter = (spendMonth: string, spent: number) =>
    stack.clients.ddb.send(
      new UpdateCommand({
        TableName: lane.res.tables.tenants,
        Key: { tenantId: TENANT },
        UpdateExpression: 'SET monthlySpendCap = :c, spendMonth = :m, spentThisMonth = :s',
        ExpressionAttributeValues: { ':c': 5000, ':m': spendMonth, ':s': spent },
      }),
    );
  const tenant = async () =>
    (
      await stack.clients.ddb.send(
        new GetCommand({
          TableName: lane.res.tables.tenants,
          Key: { tenantId: TENANT },
          ConsistentRead: true,
        }),
      )
    ).Item as TenantRecord;
  await setCounter(month, 3000);
  const before = await balance();
  const { jobId } = await submitJob(stack, lane, {
    record: { quote: 1000, reserved: true, spendMonth: month },
  });
  const s = store('r-cap');
  assert.equal((await s.claim(jobId, { tenantId: TENANT })).kind, 'claimed');
  const error = { code: 'internal', message: 'boom' };
  assert.equal(await s.finishFailed(jobId, error), true);
  // A redelivery completes the (already done) settlement again: nothing more comes back.
  assert.equal(await store('r-cap-late').failNonTerminal(jobId, error), 'terminal');
  // A stale pending copy completed again: the marker keeps it from a second refund.
  await completeSettlement(
    stack.clients.ddb,
    { tenants: lane.res.tables.tenants, jobs: lane.res.tables.jobs },
    { ...(await getJob(stack, lane, jobId)), settlement: 'pending' },
  );
  assert.deepEqual([(await tenant()).spentThisMonth, await balance()], [2000, before + 1000]);

  // Reserved in a month that is over: the balance is refunded, the new month's counter is not touched.
  const old = await submitJob(stack, lane, {
    record: { quote: 1000, reserved: true, spendMonth: '2000-01' },
  });
  assert.equal((await s.claim(old.jobId, { tenantId: TENANT })).kind, 'claimed');
  assert.equal(await s.finishFailed(old.jobId, error), true);
  assert.deepEqual([(await tenant()).spentThisMonth, await balance()], [2000, before + 2000]);
});
