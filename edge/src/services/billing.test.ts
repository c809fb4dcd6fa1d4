import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import {
  EDGE_ENV,
  generateApiKey,
  hashSecret,
  type JobRecord,
  type KeyRecord,
  type ModelInfo,
  parseReservationMarker,
  spendMonthOf,
  type TenantRecord,
  usageSortKey,
} from '@sd3/shared';
import type { BillingStore, JobQueue } from '../ports/index.js';
import { type EdgeStack, startEdgeStack, TEST_MODELS } from '../test-support/edge-stack.js';

// tiny at its defaults: 64 x 64, 4 steps, 1 image -> ceil(1000 * 4096 * 4 / 1e6) = ceil(16.384) = 17.
const QUOTE = 17;
const PRICED: ModelInfo[] = TEST_MODELS.map((m) =>
  m.id === 'tiny' ? { ...m, price: { millicredits_per_megapixel_step: 1000 } } : m,
);

let s: EdgeStack;
let app: EdgeStack['app'];
before(async () => {
  s = await startEdgeStack();
  app = s.appWith({ [EDGE_ENV.MODELS]: JSON.stringify(PRICED) }).app;
});
after(() => s.stop());

let tenantSeq = 0;
/** A tenant with `balance` millicredits (undefined: no balance enforced) and a key allowing 100 jobs at once. */
async function tenant(balance: number | undefined) {
  const tenantId = `ten_money_${++tenantSeq}`;
  const record: TenantRecord = {
    tenantId,
    name: 'money test',
    createdAt: Date.now(),
    ...(balance !== undefined ? { creditBalance: balance } : {}),
  };
  await s.doc.send(new PutCommand({ TableName: s.resources.tables.tenants, Item: record }));
  const { token, keyId, secret } = generateApiKey();
  const key: KeyRecord = {
    keyId,
    tenantId,
    secretHash: await hashSecret(secret),
    scopes: ['generate', 'read'],
    name: 'money',
    createdAt: Date.now(),
    concurrentJobs: 100,
  };
  await s.doc.send(new PutCommand({ TableName: s.resources.tables.keys, Item: key }));
  return { tenantId, token };
}

async function balanceOf(tenantId: string): Promise<number | undefined> {
  const out = await s.doc.send(
    new GetCommand({ TableName: s.resources.tables.tenants, Key: { tenantId }, ConsistentRead: true }),
  );
  return (out.Item as TenantRecord).creditBalance;
}

const post = (a: EdgeStack['app'], path: string, token: string, json: unknown) =>
  a.request(path, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(json),
  });

test('GET /v1/models shows the price', async () => {
  const t = await tenant(undefined);
  const res = await app.request('/v1/models', { headers: { authorization: `Bearer ${t.token}` } });
  const body = (await res.json()) as { data: ModelInfo[] };
  assert.deepEqual(body.data.find((m) => m.id === 'tiny')?.price, { millicredits_per_megapixel_step: 1000 });
  assert.equal(body.data.find((m) => m.id === 'sd3-medium')?.price, undefined);
});

test('dry_run answers the quote and creates nothing', async () => {
  const t = await tenant(1000);
  const res = await post(app, '/v1/generations', t.token, { prompt: 'a cat', dry_run: true, n: 2 });
  assert.equal(res.status, 200);
  const body = (await res.json()) as { object: string; quote: string; currency: string };
  assert.equal(body.object, 'quote');
  // n = 2: ceil(32.768) = 33 millicredits.
  assert.equal(body.quote, '0.033');
  assert.equal(body.currency, 'credits');
  assert.equal(await balanceOf(t.tenantId), 1000);
  const list = await app.request('/v1/generations', { headers: { authorization: `Bearer ${t.token}` } });
  assert.deepEqual(((await list.json()) as { data: unknown[] }).data, []);
  // A bad request is still a 400 under dry_run.
  const bad = await post(app, '/v1/generations', t.token, { prompt: '', dry_run: true });
  assert.equal(bad.status, 400);
});

test('50 concurrent creates with credits for exactly 10: 10 accepted, 40 refused with 402, balance 0', async () => {
  const t = await tenant(10 * QUOTE);
  const responses = await Promise.all(
    Array.from({ length: 50 }, (_, i) => post(app, '/v1/generations', t.token, { prompt: `cat ${i}` })),
  );
  const statuses = responses.map((r) => r.status);
  assert.equal(statuses.filter((x) => x === 202).length, 10, `statuses: ${statuses.join(',')}`);
  assert.equal(statuses.filter((x) => x === 402).length, 40);
  assert.equal(await balanceOf(t.tenantId), 0);
  const refused = responses.find((r) => r.status === 402)!;
  assert.match(refused.headers.get('content-type') ?? '', /application\/problem\+json/);
  const problem = (await refused.json()) as { code: string; status: number; quote: string; balance: string };
  assert.equal(problem.code, 'insufficient_credits');
  assert.equal(problem.status, 402);
  assert.equal(problem.quote, '0.017');
  assert.equal(problem.balance, '0.000');
  const accepted = (await responses.find((r) => r.status === 202)!.json()) as {
    cost: { quote: string; charge: string | null; currency: string };
  };
  assert.deepEqual(accepted.cost, { quote: '0.017', charge: null, currency: 'credits' });
});

test('a tenant without a balance is not limited; the quote is still recorded', async () => {
  const t = await tenant(undefined);
  const res = await post(app, '/v1/generations', t.token, { prompt: 'free' });
  assert.equal(res.status, 202);
  const job = (await res.json()) as { id: string };
  const record = await s.runner.getRecord(job.id);
  assert.equal(record.quote, QUOTE);
  assert.equal(record.reserved, undefined);
  assert.equal(await balanceOf(t.tenantId), undefined);
});

test('canceled while queued: full refund, charge 0, exactly once', async () => {
  const t = await tenant(100);
  const created = (await (await post(app, '/v1/generations', t.token, { prompt: 'x' })).json()) as {
    id: string;
  };
  assert.equal(await balanceOf(t.tenantId), 100 - QUOTE);
  const canceled = await post(app, `/v1/generations/${created.id}/cancel`, t.token, {});
  assert.equal(canceled.status, 200);
  const job = (await canceled.json()) as { status: string; cost: unknown };
  assert.equal(job.status, 'canceled');
  assert.deepEqual(job.cost, { quote: '0.017', charge: '0.000', currency: 'credits' });
  assert.equal(await balanceOf(t.tenantId), 100);
  const record: JobRecord = await s.runner.getRecord(created.id);
  assert.equal(record.settlement, 'done');
  assert.equal(record.refund, QUOTE);
  const event = record.events.at(-1)!;
  assert.deepEqual(event.data['cost'], { quote: '0.017', charge: '0.000', currency: 'credits' });
  // Reads and a second cancel never refund again.
  await app.request(`/v1/generations/${created.id}`, { headers: { authorization: `Bearer ${t.token}` } });
  assert.equal((await post(app, `/v1/generations/${created.id}/cancel`, t.token, {})).status, 409);
  assert.equal(await balanceOf(t.tenantId), 100);
});

test('an enqueue failure refunds the reservation in full', async () => {
  const t = await tenant(50);
  const broken: JobQueue = {
    send: () => Promise.reject(new Error('queue down')),
  };
  const failing = s.appWith({ [EDGE_ENV.MODELS]: JSON.stringify(PRICED) }, { queue: broken }).app;
  const res = await post(failing, '/v1/generations', t.token, { prompt: 'x' });
  assert.equal(res.status, 503);
  const { generation_id: id } = (await res.json()) as { generation_id: string };
  const record = await s.runner.getRecord(id);
  assert.equal(record.status, 'failed');
  assert.equal(record.charge, 0);
  assert.equal(record.settlement, 'done');
  assert.equal(await balanceOf(t.tenantId), 50);
});

test('a pending settlement left by a crash is completed once by the next read', async () => {
  const t = await tenant(100);
  const created = (await (await post(app, '/v1/generations', t.token, { prompt: 'x' })).json()) as {
    id: string;
  };
  // The runner finished (failed) and died before the refund: the job says pending, nothing refunded.
  const record = await s.runner.getRecord(created.id);
  await s.doc.send(
    new PutCommand({
      TableName: s.resources.tables.jobs,
      Item: {
        ...record,
        status: 'failed',
        completedAt: Date.now(),
        charge: 0,
        refund: QUOTE,
        settlement: 'pending',
        queuedModel: undefined,
      },
    }),
  );
  const headers = { authorization: `Bearer ${t.token}` };
  const reads = await Promise.all(
    Array.from({ length: 5 }, () => app.request(`/v1/generations/${created.id}`, { headers })),
  );
  for (const r of reads) assert.equal(r.status, 200);
  assert.equal(await balanceOf(t.tenantId), 100);
  assert.equal((await s.runner.getRecord(created.id)).settlement, 'done');
});

test('GET /v1/usage sums the ledger per day, key and user, for the caller tenant only', async () => {
  const t = await tenant(1000);
  // One item end to end: a job canceled while queued settles at 0 through the edge.
  const created = (await (
    await post(app, '/v1/generations', t.token, { prompt: 'x', user: 'alice' })
  ).json()) as { id: string };
  assert.equal((await post(app, `/v1/generations/${created.id}/cancel`, t.token, {})).status, 200);
  const record = await s.runner.getRecord(created.id);
  // More items as the runner's settlement writes them.
  const item = (day: string, jobId: string, keyId: string, user: string | undefined, charge: number) => ({
    tenantId: t.tenantId,
    sk: usageSortKey(Date.parse(`${day}T12:00:00Z`), jobId),
    jobId,
    ts: `${day}T12:00:00.000Z`,
    keyId,
    ...(user ? { user } : {}),
    model: 'tiny',
    status: 'succeeded',
    images: 2,
    megapixels: 0.0082,
    steps: 4,
    quote: charge,
    charge,
  });
  for (const u of [
    item('2026-03-01', 'gen_a', 'key1', 'alice', 1500),
    item('2026-03-01', 'gen_b', 'key2', undefined, 250),
    item('2026-03-02', 'gen_c', 'key1', 'bob', 7),
    item('2026-04-01', 'gen_d', 'key1', 'bob', 1000),
  ]) {
    await s.doc.send(new PutCommand({ TableName: s.resources.tables.usage, Item: u }));
  }
  const headers = { authorization: `Bearer ${t.token}` };
  const get = async (query: string) => {
    const res = await app.request(`/v1/usage?${query}`, { headers });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  const byDay = await get('from=2026-03-01&to=2026-04-01');
  assert.equal(byDay.status, 200);
  assert.deepEqual(byDay.body['data'], [
    { group: '2026-03-01', generations: 2, images: 4, megapixels: 0.0164, steps: 8, charge: '1.750' },
    { group: '2026-03-02', generations: 1, images: 2, megapixels: 0.0082, steps: 4, charge: '0.007' },
  ]);
  assert.deepEqual(byDay.body['total'], {
    generations: 3,
    images: 6,
    megapixels: 0.0246,
    steps: 12,
    charge: '1.757',
  });
  const byKey = await get('from=2026-03-01&to=2026-04-02&group_by=key');
  assert.deepEqual(
    (byKey.body['data'] as { group: string; charge: string }[]).map((g) => [g.group, g.charge]),
    [
      ['key1', '2.507'],
      ['key2', '0.250'],
    ],
  );
  const byUser = await get('from=2026-03-01&to=2026-03-03&group_by=user');
  assert.deepEqual(
    (byUser.body['data'] as { group: string | null; charge: string }[]).map((g) => [g.group, g.charge]),
    [
      [null, '0.250'],
      ['alice', '1.500'],
      ['bob', '0.007'],
    ],
  );
  // The live job's item (charge 0, user alice) is there today.
  const today = new Date(record.completedAt!).toISOString().slice(0, 10);
  const live = await get(
    `from=${today}&to=${new Date(record.completedAt! + 86_400_000).toISOString()}&group_by=user`,
  );
  assert.deepEqual(live.body['data'], [
    { group: 'alice', generations: 1, images: 0, megapixels: 0, steps: 0, charge: '0.000' },
  ]);
  // Another tenant sees none of it.
  const other = await app.request('/v1/usage?from=2026-03-01&to=2026-04-02', {
    headers: { authorization: `Bearer ${s.b.token}` },
  });
  assert.deepEqual(((await other.json()) as { data: unknown[] }).data, []);
  // Bad queries.
  for (const [query, field] of [
    ['to=2026-04-01', 'from'],
    ['from=2026-13-01&to=2026-04-01', 'from'],
    ['from=yesterday&to=2026-04-01', 'from'],
    ['from=2026-04-01&to=2026-03-01', 'to'],
    ['from=2025-01-01&to=2026-04-01', 'to'],
    ['from=2026-03-01&to=2026-04-01&group_by=model', 'group_by'],
  ] as const) {
    const res = await get(query);
    assert.equal(res.status, 400, query);
    const errors = res.body['errors'] as { field: string }[];
    assert.ok(
      errors.some((e) => e.field === field),
      `${query}: ${JSON.stringify(errors)}`,
    );
  }
});

/** A tenant with a monthly spend cap (and optionally a balance and an existing month counter). */
async function cappedTenant(cap: number, extra: Partial<TenantRecord> = {}) {
  const t = await tenant(undefined);
  await s.doc.send(
    new PutCommand({
      TableName: s.resources.tables.tenants,
      Item: { tenantId: t.tenantId, name: 'cap test', createdAt: Date.now(), monthlySpendCap: cap, ...extra },
    }),
  );
  return t;
}

async function tenantRecord(tenantId: string): Promise<TenantRecord> {
  const out = await s.doc.send(
    new GetCommand({ TableName: s.resources.tables.tenants, Key: { tenantId }, ConsistentRead: true }),
  );
  return out.Item as TenantRecord;
}

test('30 concurrent creates under a monthly cap for exactly 7: 7 accepted, 23 refused with spend_cap_exceeded', async () => {
  // The counter is from an earlier month: the first write restarts it, the rest add to it.
  const t = await cappedTenant(7 * QUOTE + QUOTE - 1, { spendMonth: '2000-01', spentThisMonth: 5 * QUOTE });
  const responses = await Promise.all(
    Array.from({ length: 30 }, (_, i) => post(app, '/v1/generations', t.token, { prompt: `capped ${i}` })),
  );
  const statuses = responses.map((r) => r.status);
  assert.equal(statuses.filter((x) => x === 202).length, 7, `statuses: ${statuses.join(',')}`);
  assert.equal(statuses.filter((x) => x === 402).length, 23);
  const stored = await tenantRecord(t.tenantId);
  assert.equal(stored.spentThisMonth, 7 * QUOTE);
  assert.equal(stored.spendMonth, spendMonthOf(Date.now()));
  assert.equal(stored.creditBalance, undefined);
  const problem = (await responses.find((r) => r.status === 402)!.json()) as {
    code: string;
    detail: string;
    monthly_spend_cap: string;
    spent_this_month: string;
  };
  assert.equal(problem.code, 'spend_cap_exceeded');
  assert.match(problem.detail, /monthly spend cap of 0\.135 credits/);
  assert.equal(problem.monthly_spend_cap, '0.135');
  assert.equal(problem.spent_this_month, '0.119');
  const accepted = (await responses.find((r) => r.status === 202)!.json()) as { id: string };
  const record = await s.runner.getRecord(accepted.id);
  assert.equal(record.spendMonth, spendMonthOf(Date.now()));
  assert.equal(record.reserved, undefined);
});

test('a counter left from an earlier month restarts at the first create of the new month', async () => {
  const t = await cappedTenant(QUOTE, { spendMonth: '2000-01', spentThisMonth: QUOTE });
  assert.equal((await post(app, '/v1/generations', t.token, { prompt: 'new month' })).status, 202);
  const stored = await tenantRecord(t.tenantId);
  assert.deepEqual([stored.spendMonth, stored.spentThisMonth], [spendMonthOf(Date.now()), QUOTE]);
  assert.equal((await post(app, '/v1/generations', t.token, { prompt: 'over' })).status, 402);
});

test('a refund gives the cap headroom back once; with a balance too, both apply', async () => {
  const t = await cappedTenant(QUOTE, { creditBalance: 10 * QUOTE });
  const created = (await (await post(app, '/v1/generations', t.token, { prompt: 'a' })).json()) as {
    id: string;
  };
  const refused = await post(app, '/v1/generations', t.token, { prompt: 'b' });
  assert.equal(((await refused.json()) as { code: string }).code, 'spend_cap_exceeded');
  assert.deepEqual(
    [(await tenantRecord(t.tenantId)).creditBalance, (await tenantRecord(t.tenantId)).spentThisMonth],
    [9 * QUOTE, QUOTE],
  );
  assert.equal((await post(app, `/v1/generations/${created.id}/cancel`, t.token, {})).status, 200);
  // Reads complete the settlement again: still one refund.
  for (let i = 0; i < 3; i++)
    await app.request(`/v1/generations/${created.id}`, {
      headers: { authorization: `Bearer ${t.token}` },
    });
  let stored = await tenantRecord(t.tenantId);
  assert.deepEqual([stored.creditBalance, stored.spentThisMonth], [10 * QUOTE, 0]);
  assert.equal((await post(app, '/v1/generations', t.token, { prompt: 'c' })).status, 202);

  // The balance binds before the cap does.
  const both = await cappedTenant(10 * QUOTE, { creditBalance: QUOTE });
  assert.equal((await post(app, '/v1/generations', both.token, { prompt: 'd' })).status, 202);
  const short = await post(app, '/v1/generations', both.token, { prompt: 'e' });
  assert.equal(((await short.json()) as { code: string }).code, 'insufficient_credits');
  stored = await tenantRecord(both.tenantId);
  assert.deepEqual([stored.creditBalance, stored.spentThisMonth], [0, QUOTE]);
});

test('a refund after the month turned goes to the balance only, not to the new month counter', async () => {
  const t = await cappedTenant(5 * QUOTE, { creditBalance: 5 * QUOTE });
  const created = (await (await post(app, '/v1/generations', t.token, { prompt: 'late' })).json()) as {
    id: string;
  };
  // Stand in for the month turning: the counter now belongs to another month.
  await s.doc.send(
    new PutCommand({
      TableName: s.resources.tables.tenants,
      Item: { ...(await tenantRecord(t.tenantId)), spendMonth: '2999-12', spentThisMonth: 2 * QUOTE },
    }),
  );
  assert.equal((await post(app, `/v1/generations/${created.id}/cancel`, t.token, {})).status, 200);
  const stored = await tenantRecord(t.tenantId);
  assert.deepEqual([stored.creditBalance, stored.spentThisMonth], [5 * QUOTE, 2 * QUOTE]);
});

test('a reservation carries its marker until the job exists; a failed create releases it exactly once', async () => {
  const t = await cappedTenant(10 * QUOTE, { creditBalance: 100 });
  const billing = s.appWith({}).deps.billing!;
  const markers: string[] = [];
  const recording = Object.assign(Object.create(billing) as BillingStore, {
    reserve: async (...args: Parameters<BillingStore['reserve']>) => {
      const r = await billing.reserve(...args);
      if (r.kind === 'reserved') markers.push(r.marker);
      return r;
    },
  });
  const ok = s.appWith({ [EDGE_ENV.MODELS]: JSON.stringify(PRICED) }, { billing: recording }).app;
  assert.equal((await post(ok, '/v1/generations', t.token, { prompt: 'x' })).status, 202);
  let stored = await tenantRecord(t.tenantId);
  assert.equal(stored.openReservations, undefined, 'dropped once the job was written');
  assert.deepEqual([stored.creditBalance, stored.spentThisMonth], [100 - QUOTE, QUOTE]);
  const written = parseReservationMarker(markers[0]!);
  assert.equal(written?.quote, QUOTE);
  assert.equal(written?.fromBalance, true);
  assert.equal(written?.spendMonth, spendMonthOf(Date.now()));

  // The job put fails: the release gives both parts back and deletes the marker in one write.
  const jobs = s.appWith({}).deps.jobs;
  const failingJobs = Object.assign(Object.create(jobs) as typeof jobs, {
    create: () => Promise.reject(new Error('DynamoDB unavailable')),
  });
  const failing = s.appWith(
    { [EDGE_ENV.MODELS]: JSON.stringify(PRICED) },
    { billing: recording, jobs: failingJobs },
  ).app;
  assert.equal((await post(failing, '/v1/generations', t.token, { prompt: 'x' })).status, 500);
  stored = await tenantRecord(t.tenantId);
  assert.equal(stored.openReservations, undefined);
  assert.deepEqual([stored.creditBalance, stored.spentThisMonth], [100 - QUOTE, QUOTE]);
  // A second release of the same marker (a retry, the reconciler) finds it gone and changes nothing.
  assert.equal(await billing.release(t.tenantId, markers[1]!), 'absent');
  stored = await tenantRecord(t.tenantId);
  assert.deepEqual([stored.creditBalance, stored.spentThisMonth], [100 - QUOTE, QUOTE]);
});
