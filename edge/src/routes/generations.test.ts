import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { ENV, type Job, type JobRecord, JobSchema, nextEvent } from '@sd3/shared';
import sharp from 'sharp';
import { newJobId } from '../services/job-id.js';
import { type EdgeStack, startEdgeStack } from '../test-support/edge-stack.js';

let s: EdgeStack;
before(async () => {
  s = await startEdgeStack();
});
after(() => s.stop());

async function create(
  body: unknown = { prompt: 'a red fox' },
  token = s.a.token,
  headers: Record<string, string> = {},
) {
  const res = await s.call('POST', '/v1/generations', { token, json: body, headers });
  return { res, job: (await res.json()) as Job };
}

const get = (id: string, token = s.a.token) => s.call('GET', `/v1/generations/${id}`, { token });

describe('create and read', () => {
  test('create answers 202 with a queued job, signs the envelope and sends it to the model queue', async () => {
    await s.runner.receiveAll('tiny');
    const { res, job } = await create({ prompt: 'a red fox', seed: 7, n: 2, user: 'u-1' }, s.a.token, {
      'x-request-id': 'req-fox-1',
    });
    assert.equal(res.status, 202);
    assert.equal(res.headers.get('location'), `/v1/generations/${job.id}`);
    assert.equal(res.headers.get('x-request-id'), 'req-fox-1');
    JobSchema.parse(job);
    assert.match(job.id, /^gen_[0-9A-Z]{26}$/);
    assert.equal(job.status, 'queued');
    assert.equal(job.model, 'tiny');
    assert.equal(job.params.seed, 7);
    assert.equal(job.params.width, 64);
    assert.equal(job.user, 'u-1');
    assert.equal(job.queue_position, 0);
    const record = await s.runner.getRecord(job.id);
    assert.equal(record.queuedModel, 'tiny');
    assert.equal(record.events[0]!.type, 'generation.queued');
    assert.equal(record.tenantId, s.a.tenantId);
    assert.ok(record.messageId && record.enqueuedAt);
    assert.ok(record.expiresAt > Date.now() / 1000 + 29 * 24 * 3600);
    const messages = await s.runner.receiveAll('tiny');
    assert.equal(messages.length, 1);
    const { payload, attributes } = messages[0]!;
    assert.deepEqual(attributes, {
      jobId: job.id,
      tenantId: s.a.tenantId,
      model: 'tiny',
      requestId: 'req-fox-1',
    });
    assert.equal(payload.jobId, job.id);
    assert.deepEqual(payload.params, job.params);
    assert.deepEqual(payload.inputs, {});
    assert.equal(payload.outputPrefix, `outputs/${s.a.tenantId}/${job.id}/`);
    assert.ok(payload.expiresAt - payload.issuedAt === 3600_000);
  });

  test('a random seed is chosen and echoed when absent; queue positions count earlier queued jobs', async () => {
    const first = await create({ prompt: 'one', model: 'sd3-medium' });
    const second = await create({ prompt: 'two', model: 'sd3-medium' });
    assert.ok(Number.isInteger(first.job.params.seed));
    assert.equal(second.job.queue_position, (first.job.queue_position ?? -1) + 1);
    assert.equal(first.job.params.width, 1024);
  });

  test('a finished job has presigned output URLs that fetch the PNG, re-signed on every read', async () => {
    const { job } = await create({ prompt: 'x', n: 2, output_ttl_seconds: 120 });
    await s.runner.succeed(job.id);
    const res = await get(job.id);
    assert.equal(res.status, 200);
    const done = JobSchema.parse(await res.json());
    assert.equal(done.status, 'succeeded');
    assert.equal(done.queue_position, null);
    assert.equal(done.outputs.length, 2);
    const out = done.outputs[0]!;
    assert.match(out.url, /X-Amz-Expires=120/);
    const expires = Date.parse(out.url_expires_at) - Date.now();
    assert.ok(expires > 100_000 && expires <= 120_000, `expires in ${expires} ms`);
    const png = Buffer.from(await (await fetch(out.url)).arrayBuffer());
    const meta = await sharp(png).metadata();
    assert.deepEqual([meta.format, meta.width, meta.height], ['png', 64, 64]);
    assert.deepEqual(done.usage, { images: 2, megapixels: 0.0082, steps: 4 });
    await new Promise((r) => setTimeout(r, 1100));
    const again = JobSchema.parse(await (await get(job.id)).json());
    assert.notEqual(again.outputs[0]!.url, out.url);
  });

  // Only the reconciler decides a message is lost (it re-sends first; see reconciler.test.ts): a
  // read cannot tell a lost message from a long backlog, so it must not fail the job.
  test('a read leaves an old queued job with no recorded message to the reconciler', async () => {
    const id = newJobId(Date.now() - 600_000);
    const createdAt = Date.now() - 600_000;
    const record: JobRecord = {
      jobId: id,
      tenantId: s.a.tenantId,
      keyId: s.a.keyId,
      model: 'tiny',
      status: 'queued',
      createdAt,
      updatedAt: createdAt,
      params: {
        prompt: 'p',
        negative_prompt: '',
        width: 64,
        height: 64,
        steps: 4,
        guidance_scale: 7,
        seed: 1,
        n: 1,
        output_format: 'png',
        output_quality: 90,
        strength: null,
        output_ttl_seconds: 3600,
      },
      events: [],
      queuedModel: 'tiny',
      expiresAt: Math.floor(createdAt / 1000) + 3600,
    };
    record.events.push(nextEvent(record, 'generation.queued', {}, createdAt));
    await s.doc.send(new PutCommand({ TableName: s.resources.tables.jobs, Item: record }));
    const job = JobSchema.parse(await (await get(id)).json());
    assert.equal(job.status, 'queued');
    assert.equal(job.error, null);
    const stored = await s.runner.getRecord(id);
    assert.equal(stored.queuedModel, 'tiny');
    assert.deepEqual(
      stored.events.map((e) => e.type),
      ['generation.queued'],
    );
  });
});

describe('idempotency', () => {
  test('same key and same body -> the same job, replayed; another body -> 409', async () => {
    const key = `idem-${Date.now()}`;
    const first = await create({ prompt: 'same', seed: 1 }, s.a.token, { 'idempotency-key': key });
    assert.equal(first.res.status, 202);
    assert.equal(first.res.headers.get('idempotent-replayed'), null);
    // Key order and whitespace do not matter: the canonical body is hashed.
    const again = await s.call('POST', '/v1/generations', {
      token: s.a.token,
      body: '{ "seed": 1,   "prompt": "same" }',
      headers: { 'content-type': 'application/json', 'idempotency-key': key },
    });
    assert.equal(again.status, 202);
    assert.equal(again.headers.get('idempotent-replayed'), 'true');
    assert.equal(((await again.json()) as Job).id, first.job.id);
    const conflict = await create({ prompt: 'different', seed: 1 }, s.a.token, { 'idempotency-key': key });
    assert.equal(conflict.res.status, 409);
    assert.equal(conflict.res.headers.get('content-type'), 'application/problem+json');
    assert.equal((conflict.job as unknown as { code: string }).code, 'idempotency_conflict');
    // Scoped per tenant: tenant B's same key makes its own job.
    const other = await create({ prompt: 'same', seed: 1 }, s.b.token, { 'idempotency-key': key });
    assert.equal(other.res.status, 202);
    assert.notEqual(other.job.id, first.job.id);
    // A replay of a finished job answers 200.
    await s.runner.succeed(first.job.id);
    const finished = await create({ prompt: 'same', seed: 1 }, s.a.token, { 'idempotency-key': key });
    assert.equal(finished.res.status, 200);
    assert.equal(finished.job.status, 'succeeded');
  });
});

describe('Prefer: wait', () => {
  test('a job finished by a runner within the wait -> 200 with the finished job', async () => {
    await s.runner.receiveAll('tiny');
    const loop = s.runner.loop('tiny');
    try {
      const { res, job } = await create({ prompt: 'wait for me' }, s.a.token, { prefer: 'wait=10' });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('preference-applied'), 'wait=10');
      assert.equal(job.status, 'succeeded');
      assert.equal(job.outputs.length, 1);
    } finally {
      await loop.stop();
    }
  });

  test('not finished in time -> 202 after the wait', async () => {
    const t0 = Date.now();
    const { res, job } = await create({ prompt: 'slow' }, s.a.token, { prefer: 'respond-async, wait=1' });
    assert.equal(res.status, 202);
    assert.ok(Date.now() - t0 >= 950);
    assert.equal(res.headers.get('preference-applied'), 'wait=1');
    assert.equal(job.status, 'queued');
  });
});

describe('list', () => {
  test('newest first, cursor paging, status filter, only the caller tenant', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await create({ prompt: `page ${i}` }, s.b.token)).job.id);
    await s.runner.succeed(ids[1]!);
    await s.runner.succeed(ids[3]!);
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const q: string = cursor ? `&cursor=${cursor}` : '';
      const res = await s.call('GET', `/v1/generations?limit=2${q}`, { token: s.b.token });
      assert.equal(res.status, 200);
      const page = (await res.json()) as { object: string; data: Job[]; next_cursor: string | null };
      assert.equal(page.object, 'list');
      assert.ok(page.data.length <= 2);
      seen.push(...page.data.map((j) => j.id));
      cursor = page.next_cursor;
      pages++;
    } while (cursor && pages < 20);
    // Tenant B also has the idempotency test's job; its own five come first, newest first.
    assert.deepEqual(seen.slice(0, 5), [...ids].reverse());
    assert.equal(new Set(seen).size, seen.length);
    const succeeded = (await (
      await s.call('GET', '/v1/generations?status=succeeded&limit=1', { token: s.b.token })
    ).json()) as { data: Job[]; next_cursor: string | null };
    assert.deepEqual(
      succeeded.data.map((j) => j.id),
      [ids[3]],
    );
    const rest = (await (
      await s.call('GET', `/v1/generations?status=succeeded&limit=1&cursor=${succeeded.next_cursor}`, {
        token: s.b.token,
      })
    ).json()) as { data: Job[] };
    assert.deepEqual(
      rest.data.map((j) => j.id),
      [ids[1]],
    );
    const aList = (await (await s.call('GET', '/v1/generations?limit=100', { token: s.a.token })).json()) as {
      data: Job[];
    };
    assert.ok(aList.data.every((j) => !ids.includes(j.id)));
  });
});

describe('cancel', () => {
  test('queued -> canceled at once, event appended, queue index entry removed', async () => {
    const { job } = await create({ prompt: 'cancel me' });
    const res = await s.call('POST', `/v1/generations/${job.id}/cancel`, { token: s.a.token });
    assert.equal(res.status, 200);
    const canceled = JobSchema.parse(await res.json());
    assert.equal(canceled.status, 'canceled');
    assert.ok(canceled.completed_at);
    const record = await s.runner.getRecord(job.id);
    assert.equal(record.queuedModel, undefined);
    assert.deepEqual(
      record.events.map((e) => e.type),
      ['generation.queued', 'generation.canceled'],
    );
    assert.equal(record.events[1]!.id, `${job.id}.0001`);
    const again = await s.call('POST', `/v1/generations/${job.id}/cancel`, { token: s.a.token });
    assert.equal(again.status, 409);
  });

  test('running -> cancelRequested, the job is returned', async () => {
    const { job } = await create({ prompt: 'stop me' });
    await s.runner.start(job.id);
    const res = await s.call('POST', `/v1/generations/${job.id}/cancel`, { token: s.a.token });
    assert.equal(res.status, 202);
    assert.equal(((await res.json()) as Job).status, 'running');
    assert.equal((await s.runner.getRecord(job.id)).cancelRequested, true);
  });

  test('finished -> 409 not_cancelable', async () => {
    const { job } = await create({ prompt: 'done' });
    await s.runner.succeed(job.id);
    const res = await s.call('POST', `/v1/generations/${job.id}/cancel`, { token: s.a.token });
    assert.equal(res.status, 409);
    assert.equal(((await res.json()) as { code: string }).code, 'not_cancelable');
  });
});

describe('isolation and auth', () => {
  test("another tenant's job is 404 on every route; its list never shows it", async () => {
    const { job } = await create({ prompt: 'private' });
    await s.runner.succeed(job.id);
    for (const [method, path] of [
      ['GET', `/v1/generations/${job.id}`],
      ['POST', `/v1/generations/${job.id}/cancel`],
      ['GET', `/v1/generations/${job.id}/events`],
    ] as const) {
      const res = await s.call(method, path, { token: s.b.token });
      assert.equal(res.status, 404, `${method} ${path}`);
      const body = (await res.json()) as { code: string; request_id: string };
      assert.equal(body.code, 'not_found');
      assert.ok(body.request_id);
    }
    const list = (await (await s.call('GET', '/v1/generations?limit=100', { token: s.b.token })).json()) as {
      data: Job[];
    };
    assert.ok(!list.data.some((j) => j.id === job.id));
    // The idempotency key of tenant A does not leak tenant A's job to tenant B either.
    const res = await s.call('POST', '/v1/generations', {
      token: s.b.token,
      json: { prompt: 'private' },
      headers: { 'idempotency-key': 'shared-key-1' },
    });
    assert.equal(res.status, 202);
  });

  test('keys: missing, malformed, unknown, wrong secret, revoked -> 401; read-only key cannot create', async () => {
    const cases: [Record<string, string>, RegExp][] = [
      [{}, /Authorization/],
      [{ authorization: 'Basic abc' }, /Bearer/],
      [{ authorization: 'Bearer sk_aaaaaaaaaaaa_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb' }, /not valid/],
      [
        { authorization: `Bearer ${s.a.token.slice(0, -1)}${s.a.token.endsWith('x') ? 'y' : 'x'}` },
        /not valid/,
      ],
    ];
    for (const [headers, detail] of cases) {
      const res = await s.call('GET', '/v1/generations', { headers });
      assert.equal(res.status, 401);
      assert.match(res.headers.get('www-authenticate') ?? '', /^Bearer/);
      assert.match(((await res.json()) as { detail: string }).detail, detail);
    }
    const readOnly = await s.call('POST', '/v1/generations', { token: s.aRead.token, json: { prompt: 'x' } });
    assert.equal(readOnly.status, 403);
    assert.equal((await s.call('GET', '/v1/generations', { token: s.aRead.token })).status, 200);
    // Revocation: a fresh app (empty key cache) refuses the key.
    await s.doc.send(
      new PutCommand({
        TableName: s.resources.tables.keys,
        Item: { ...(await keyItem(s.aRead.keyId)), revokedAt: Date.now() },
      }),
    );
    const fresh = s.appWith({});
    const revoked = await fresh.app.request('/v1/generations', {
      headers: { authorization: `Bearer ${s.aRead.token}` },
    });
    assert.equal(revoked.status, 401);
    assert.match(((await revoked.json()) as { detail: string }).detail, /revoked/);
  });
});

async function keyItem(keyId: string) {
  const out = await s.doc.send(new GetCommand({ TableName: s.resources.tables.keys, Key: { keyId } }));
  return out.Item!;
}

describe('enqueue failure', () => {
  test('a failed SQS send marks the job failed and answers 503 with Retry-After', async () => {
    const queues = JSON.parse(s.env[ENV.JOB_QUEUES]!) as Record<string, string>;
    const broken = Object.fromEntries(
      Object.entries(queues).map(([m, url]) => [m, url.replace(/[^/]+$/, 'missing-queue')]),
    );
    const { app } = s.appWith({ [ENV.JOB_QUEUES]: JSON.stringify(broken) });
    const res = await app.request('/v1/generations', {
      method: 'POST',
      headers: {
        authorization: `Bearer ${s.a.token}`,
        'content-type': 'application/json',
        'idempotency-key': 'fail-1',
      },
      body: JSON.stringify({ prompt: 'never queued' }),
    });
    assert.equal(res.status, 503);
    assert.equal(res.headers.get('retry-after'), '5');
    const problem = (await res.json()) as { code: string; generation_id: string };
    assert.equal(problem.code, 'enqueue_failed');
    const record = await s.runner.getRecord(problem.generation_id);
    assert.equal(record.status, 'failed');
    assert.equal(record.error?.code, 'enqueue_failed');
    assert.equal(record.queuedModel, undefined);
    assert.equal(record.events.at(-1)!.type, 'generation.failed');
    // The idempotency reservation was released: a retry with the same key on a healthy edge runs.
    const retry = await create({ prompt: 'never queued' }, s.a.token, { 'idempotency-key': 'fail-1' });
    assert.equal(retry.res.status, 202);
    assert.notEqual(retry.job.id, problem.generation_id);
  });
});
