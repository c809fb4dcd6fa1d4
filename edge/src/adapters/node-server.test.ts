import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { type EdgeStack, startEdgeStack } from '../test-support/edge-stack.js';
import { startEdgeServer } from './node-server.js';

let s: EdgeStack;
before(async () => {
  s = await startEdgeStack();
});
after(() => s.stop());

test('the Node server serves the app over real HTTP, SSE included, and closes with streams open', async () => {
  const { deps } = s.appWith({});
  const server = await startEdgeServer({ port: 0, deps });
  try {
    assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    const health = await fetch(`${server.url}/healthz`);
    assert.deepEqual(await health.json(), { status: 'ok' });
    const created = await fetch(`${server.url}/v1/generations`, {
      method: 'POST',
      headers: { authorization: `Bearer ${s.a.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'over http' }),
    });
    assert.equal(created.status, 202);
    const { id } = (await created.json()) as { id: string };
    const events = await fetch(`${server.url}/v1/generations/${id}/events`, {
      headers: { authorization: `Bearer ${s.a.token}` },
    });
    const reader = events.body!.pipeThrough(new TextDecoderStream()).getReader();
    const first = await reader.read();
    assert.match(first.value ?? '', /event: generation.queued/);
  } finally {
    await server.close();
  }
});

test('key records are cached for the TTL: a revoked key works until the cache entry expires', async () => {
  let now = Date.now();
  const { app } = s.appWith({}, { keyCacheTtlMs: 30_000, clock: { now: () => now } });
  const call = () => app.request('/v1/models', { headers: { authorization: `Bearer ${s.b.token}` } });
  assert.equal((await call()).status, 200);
  const table = s.resources.tables.keys;
  const item = (await s.doc.send(new GetCommand({ TableName: table, Key: { keyId: s.b.keyId } }))).Item!;
  await s.doc.send(new PutCommand({ TableName: table, Item: { ...item, revokedAt: now } }));
  try {
    assert.equal((await call()).status, 200);
    now += 30_001;
    assert.equal((await call()).status, 401);
  } finally {
    await s.doc.send(new PutCommand({ TableName: table, Item: item }));
  }
});
