import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { generateApiKey, hashSecret, type KeyRecord } from '@sd3/shared';
import { DynamoKeyStore } from '../adapters/aws/dynamo-key-store.js';
import { type EdgeStack, startEdgeStack } from '../test-support/edge-stack.js';

let s: EdgeStack;
before(async () => {
  s = await startEdgeStack();
});
after(() => s.stop());

/** A fresh key of tenant A with the given per-key limits. */
async function newKey(limits: Partial<Pick<KeyRecord, 'requestsPerMinute' | 'concurrentJobs'>> = {}) {
  const { token, keyId, secret } = generateApiKey();
  const record: KeyRecord = {
    keyId,
    tenantId: 'ten_a',
    secretHash: await hashSecret(secret),
    scopes: ['generate', 'read'],
    name: 'limits test',
    createdAt: Date.now(),
    ...limits,
  };
  await s.doc.send(new PutCommand({ TableName: s.resources.tables.keys, Item: record }));
  return { token, keyId };
}

const manualClock = (start: number) => {
  const clock = { t: start, now: () => clock.t };
  return clock;
};

const get = (app: EdgeStack['app'], path: string, token: string) =>
  app.request(path, { headers: { authorization: `Bearer ${token}` } });

const create = (app: EdgeStack['app'], token: string, prompt = 'limits') =>
  app.request('/v1/generations', {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ prompt }),
  });

test('requests per minute: headers on every response, 429 past the limit, shared by two instances', async () => {
  // 15 s into a minute: the window resets in 45 s.
  const clock = manualClock(Date.UTC(2026, 0, 1, 12, 0, 15));
  const one = s.appWith({}, { clock }).app;
  const two = s.appWith({}, { clock }).app;
  const { token } = await newKey({ requestsPerMinute: 4 });
  const remaining: string[] = [];
  for (let i = 0; i < 4; i++) {
    const res = await get(i % 2 === 0 ? one : two, '/v1/models', token);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('ratelimit-limit'), '4');
    assert.equal(res.headers.get('ratelimit-reset'), '45');
    remaining.push(res.headers.get('ratelimit-remaining')!);
  }
  assert.deepEqual(remaining, ['3', '2', '1', '0']);
  for (const app of [one, two]) {
    const refused = await get(app, '/v1/models', token);
    assert.equal(refused.status, 429);
    assert.match(refused.headers.get('content-type')!, /application\/problem\+json/);
    assert.equal(((await refused.json()) as { code: string }).code, 'rate_limited');
    assert.equal(refused.headers.get('retry-after'), '45');
    assert.equal(refused.headers.get('ratelimit-limit'), '4');
    assert.equal(refused.headers.get('ratelimit-remaining'), '0');
    assert.equal(refused.headers.get('ratelimit-reset'), '45');
  }
  clock.t += 45_000;
  const next = await get(two, '/v1/models', token);
  assert.equal(next.status, 200);
  assert.equal(next.headers.get('ratelimit-remaining'), '3');
  assert.equal(next.headers.get('ratelimit-reset'), '60');
});

test('error responses carry the headers too; keys without limits use the configured defaults', async () => {
  const clock = manualClock(Date.UTC(2026, 0, 1, 13, 0, 50));
  const { app } = s.appWith({}, { clock, keyLimits: { requestsPerMinute: 7 } });
  const { token } = await newKey();
  const missing = await get(app, '/v1/generations/gen_01M889VXD4MTCPREBJNPFH520H', token);
  assert.equal(missing.status, 404);
  assert.equal(missing.headers.get('ratelimit-limit'), '7');
  assert.equal(missing.headers.get('ratelimit-remaining'), '6');
  assert.equal(missing.headers.get('ratelimit-reset'), '10');
  const forbidden = await app.request('/v1/generations', {
    method: 'POST',
    headers: { authorization: `Bearer ${s.aRead.token}`, 'content-type': 'application/json' },
    body: '{"prompt":"x"}',
  });
  assert.equal(forbidden.status, 403);
  assert.equal(forbidden.headers.get('ratelimit-limit'), '7');
  const invalid = await create(app, token, '');
  assert.equal(invalid.status, 400);
  assert.equal(invalid.headers.get('ratelimit-remaining'), '5');
  // No key, no limit: nothing to report.
  const anonymous = await app.request('/v1/models');
  assert.equal(anonymous.status, 401);
  assert.equal(anonymous.headers.get('ratelimit-limit'), null);
});

test('concurrent jobs: the limit holds across instances and frees when a job finishes or is canceled', async () => {
  const one = s.appWith({}).app;
  const two = s.appWith({}).app;
  const { token } = await newKey({ concurrentJobs: 2 });
  // Five creates racing on two instances: exactly two get a slot.
  const results = await Promise.all(
    [0, 1, 2, 3, 4].map((i) => create(i % 2 === 0 ? one : two, token, `race ${i}`)),
  );
  const statuses = results.map((r) => r.status).sort();
  assert.deepEqual(statuses, [202, 202, 429, 429, 429]);
  const refused = results.find((r) => r.status === 429)!;
  assert.equal(((await refused.json()) as { code: string }).code, 'rate_limited');
  assert.ok(Number(refused.headers.get('retry-after')) > 0);
  assert.ok(refused.headers.get('ratelimit-limit'));
  const ids = await Promise.all(
    results.filter((r) => r.status === 202).map(async (r) => ((await r.json()) as { id: string }).id),
  );
  assert.equal((await create(two, token)).status, 429);

  await s.runner.succeed(ids[0]!);
  const third = await create(one, token, 'after one finished');
  assert.equal(third.status, 202);
  const thirdId = ((await third.json()) as { id: string }).id;
  assert.equal((await create(two, token)).status, 429);

  const canceled = await two.request(`/v1/generations/${thirdId}/cancel`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}` },
  });
  assert.equal(canceled.status, 200);
  assert.equal((await create(one, token, 'after a cancel')).status, 202);
  // Another key of the same tenant has its own slots.
  assert.equal((await create(one, (await newKey({ concurrentJobs: 1 })).token)).status, 202);
});

test('an Idempotency-Key replay does not take a slot', async () => {
  const { app } = s.appWith({});
  const { token } = await newKey({ concurrentJobs: 1 });
  const send = () =>
    app.request('/v1/generations', {
      method: 'POST',
      headers: {
        authorization: `Bearer ${token}`,
        'content-type': 'application/json',
        'idempotency-key': 'limits-replay-1',
      },
      body: JSON.stringify({ prompt: 'once' }),
    });
  const first = await send();
  assert.equal(first.status, 202);
  const again = await send();
  assert.equal(again.status, 202);
  assert.equal(again.headers.get('idempotent-replayed'), 'true');
});

test('a revoked key is refused once the cache TTL has passed', async () => {
  const clock = manualClock(Date.now());
  const { app } = s.appWith({}, { clock, keyCacheTtlMs: 2000 });
  const { token, keyId } = await newKey();
  assert.equal((await get(app, '/v1/models', token)).status, 200);
  await s.doc.send(
    new UpdateCommand({
      TableName: s.resources.tables.keys,
      Key: { keyId },
      UpdateExpression: 'SET revokedAt = :t',
      ExpressionAttributeValues: { ':t': clock.t },
    }),
  );
  clock.t += 1000;
  assert.equal((await get(app, '/v1/models', token)).status, 200, 'still cached');
  clock.t += 1001;
  const refused = await get(app, '/v1/models', token);
  assert.equal(refused.status, 401);
  assert.match(((await refused.json()) as { detail: string }).detail, /revoked/);
});

test('last use is written once per interval, not per request, and never moved back', async () => {
  const start = Date.now();
  const clock = manualClock(start);
  const store = new DynamoKeyStore(s.doc, s.resources.tables.keys);
  let touches = 0;
  const counting = {
    get: (id: string) => store.get(id),
    touchLastUsed: (id: string, at: number, cutoff: number) => {
      touches += 1;
      return store.touchLastUsed(id, at, cutoff);
    },
  };
  const tuning = { lastUsedIntervalMs: 60_000 };
  const { app } = s.appWith({}, { clock, keys: counting, tuning });
  const { token, keyId } = await newKey();
  const lastUsed = async () => {
    const out = await s.doc.send(
      new GetCommand({ TableName: s.resources.tables.keys, Key: { keyId }, ConsistentRead: true }),
    );
    return (out.Item as KeyRecord).lastUsedAt;
  };
  const waitFor = async (value: number) => {
    for (let i = 0; i < 100 && (await lastUsed()) !== value; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(await lastUsed(), value);
  };

  for (let i = 0; i < 5; i++) {
    assert.equal((await get(app, '/v1/models', token)).status, 200);
    clock.t += 100;
  }
  assert.equal(touches, 1);
  await waitFor(start);

  // Another instance reads the recorded use and writes nothing.
  const other = s.appWith({}, { clock: manualClock(start + 1000), keys: counting, tuning }).app;
  assert.equal((await get(other, '/v1/models', token)).status, 200);
  assert.equal(touches, 1);
  // A write from an instance with a stale view is refused by the condition.
  await store.touchLastUsed(keyId, start + 2000, start + 2000 - 60_000);
  assert.equal(await lastUsed(), start);

  clock.t = start + 60_000;
  for (let i = 0; i < 3; i++) assert.equal((await get(app, '/v1/models', token)).status, 200);
  assert.equal(touches, 2);
  await waitFor(start + 60_000);
});
