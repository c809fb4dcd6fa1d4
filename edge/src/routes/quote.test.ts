import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { PutCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import {
  EDGE_ENV,
  generateApiKey,
  hashSecret,
  type KeyRecord,
  type ModelInfo,
  ProblemSchema,
  QuoteSchema,
  spendMonthOf,
  type TenantRecord,
} from '@sd3/shared';
import sharp from 'sharp';
import { type EdgeStack, startEdgeStack, TEST_MODELS } from '../test-support/edge-stack.js';

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

let seq = 0;
async function tenant(extra: Partial<TenantRecord>, scopes: KeyRecord['scopes'] = ['read']) {
  const tenantId = `ten_quote_${++seq}`;
  const record: TenantRecord = { tenantId, name: 'quote test', createdAt: Date.now(), ...extra };
  await s.doc.send(new PutCommand({ TableName: s.resources.tables.tenants, Item: record }));
  const { token, keyId, secret } = generateApiKey();
  const key: KeyRecord = {
    keyId,
    tenantId,
    secretHash: await hashSecret(secret),
    scopes,
    name: 'quote',
    createdAt: Date.now(),
  };
  await s.doc.send(new PutCommand({ TableName: s.resources.tables.keys, Item: key }));
  return { tenantId, token };
}

const quote = (token: string | undefined, json: unknown) =>
  app.request('/v1/generations/quote', {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: JSON.stringify(json),
  });

async function jobCount(tenantId: string): Promise<number> {
  const out = await s.doc.send(
    new ScanCommand({
      TableName: s.resources.tables.jobs,
      FilterExpression: 'tenantId = :t',
      ExpressionAttributeValues: { ':t': tenantId },
    }),
  );
  return out.Items?.length ?? 0;
}

test('the price of a request, the room left, and nothing created or reserved', async () => {
  const month = spendMonthOf(Date.now());
  const t = await tenant({
    creditBalance: 5000,
    monthlySpendCap: 2000,
    spendMonth: month,
    spentThisMonth: 1500,
  });
  const res = await quote(t.token, { prompt: 'a cat', n: 2, steps: 10, previews: true });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('cache-control'), 'no-store');
  const body = QuoteSchema.parse(await res.json());
  // 1000 millicredits per MP-step x 64 x 64 px x 10 steps x 2 images = 81.92 -> 82 millicredits.
  assert.equal(body.quote, '0.082');
  assert.equal(body.currency, 'credits');
  assert.equal(body.model, 'tiny');
  assert.deepEqual(body.usage, { images: 2, megapixels: 0.004096, steps: 10 });
  assert.equal(body.balance, '5.000');
  assert.equal(body.monthly_spend_left, '0.500');
  assert.equal(await jobCount(t.tenantId), 0);
  // Quoting again gives the same room: nothing was reserved.
  const again = QuoteSchema.parse(await (await quote(t.token, { prompt: 'a cat', n: 2, steps: 10 })).json());
  assert.equal(again.balance, '5.000');
});

test('a tenant without balance or cap: both null; a spend counter from an earlier month does not count', async () => {
  const free = QuoteSchema.parse(await (await quote((await tenant({})).token, { prompt: 'x' })).json());
  assert.equal(free.balance, null);
  assert.equal(free.monthly_spend_left, null);
  const t = await tenant({ monthlySpendCap: 3000, spendMonth: '2001-01', spentThisMonth: 2999 });
  const old = QuoteSchema.parse(await (await quote(t.token, { prompt: 'x' })).json());
  assert.equal(old.monthly_spend_left, '3.000');
  assert.equal(old.balance, null);
});

test('a free model quotes 0.000', async () => {
  const t = await tenant({});
  const body = QuoteSchema.parse(await (await quote(t.token, { prompt: 'x', model: 'sd3-medium' })).json());
  assert.equal(body.quote, '0.000');
  assert.equal(body.model, 'sd3-medium');
});

test('validated exactly as create: 400 with the fields, 422 over the model limits, a bad image, no key', async () => {
  const t = await tenant({}, ['generate']);
  const bad = await quote(t.token, { prompt: '', width: 100, height: 64, bogus: 1 });
  assert.equal(bad.status, 400);
  assert.match(bad.headers.get('content-type') ?? '', /application\/problem\+json/);
  const problem = ProblemSchema.parse(await bad.json());
  const fields = (problem.errors ?? []).map((e) => e.field).sort();
  assert.ok(fields.includes('prompt') && fields.includes('width'), JSON.stringify(problem.errors));
  const create = await app.request('/v1/generations', {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${t.token}` },
    body: JSON.stringify({ prompt: '', width: 100, height: 64, bogus: 1 }),
  });
  assert.deepEqual(ProblemSchema.parse(await create.json()).errors, problem.errors);

  const tooMany = await quote(t.token, { prompt: 'x', steps: 51 });
  assert.equal(tooMany.status, 422);
  assert.equal(ProblemSchema.parse(await tooMany.json()).errors?.[0]?.field, 'steps');

  const notImage = await quote(t.token, { prompt: 'x', image: 'bm90IGFuIGltYWdl' });
  assert.equal(notImage.status, 400);
  assert.equal(ProblemSchema.parse(await notImage.json()).errors?.[0]?.field, 'image');
  const png = await sharp({
    create: { width: 32, height: 32, channels: 3, background: { r: 9, g: 9, b: 9 } },
  })
    .png()
    .toBuffer();
  const img = await quote(t.token, { prompt: 'x', image: png.toString('base64'), strength: 0.5 });
  assert.equal(img.status, 200);
  assert.equal(QuoteSchema.parse(await img.json()).params.strength, 0.5);

  assert.equal((await quote(undefined, { prompt: 'x' })).status, 401);
  assert.equal(
    (await quote('sk_aaaaaaaaaaaa_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb', { prompt: 'x' })).status,
    401,
  );
  assert.equal(await jobCount(t.tenantId), 0);
});
