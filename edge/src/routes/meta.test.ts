import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { ProblemSchema } from '@sd3/shared';
import { type EdgeStack, startEdgeStack, TEST_MODELS } from '../test-support/edge-stack.js';

let s: EdgeStack;
before(async () => {
  s = await startEdgeStack();
});
after(() => s.stop());

test('/healthz needs no key', async () => {
  const res = await s.call('GET', '/healthz');
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { status: 'ok' });
});

test('/v1/models lists the deployment models, behind a key', async () => {
  assert.equal((await s.call('GET', '/v1/models')).status, 401);
  const res = await s.call('GET', '/v1/models', { token: s.aRead.token });
  assert.deepEqual(await res.json(), { object: 'list', data: TEST_MODELS });
});

test('/openapi.json is OpenAPI 3.1 with every route, the bearer scheme and problem responses', async () => {
  const res = await s.call('GET', '/openapi.json');
  assert.equal(res.status, 200);
  const doc = (await res.json()) as {
    openapi: string;
    paths: Record<
      string,
      Record<string, { responses: Record<string, { content?: Record<string, unknown> }> }>
    >;
    components: {
      securitySchemes: Record<string, { type: string; scheme: string }>;
      schemas: Record<string, unknown>;
    };
  };
  assert.equal(doc.openapi, '3.1.0');
  const routes = Object.entries(doc.paths).flatMap(([p, ms]) =>
    Object.keys(ms).map((m) => `${m.toUpperCase()} ${p}`),
  );
  assert.deepEqual(routes.sort(), [
    'GET /',
    'GET /docs',
    'GET /healthz',
    'GET /openapi.json',
    'GET /playground/{file}',
    'GET /v1/generations',
    'GET /v1/generations/{id}',
    'GET /v1/generations/{id}/events',
    'GET /v1/generations/{id}/webhooks',
    'GET /v1/models',
    'GET /v1/usage',
    'POST /v1/generations',
    'POST /v1/generations/quote',
    'POST /v1/generations/{id}/cancel',
    'POST /v1/generations/{id}/webhooks/resend',
    'POST /v1/images/generations',
  ]);
  // The document lists exactly the app's routes.
  const appRoutes = s.app.routes
    .filter((r) => r.method !== 'ALL')
    .map((r) => `${r.method} ${r.path.replace(/:([a-z]+)/g, '{$1}')}`);
  assert.deepEqual([...new Set(appRoutes)].sort(), routes.sort());
  assert.deepEqual(doc.components.securitySchemes['bearerAuth'], {
    type: 'http',
    scheme: 'bearer',
    description: 'API key: `Authorization: Bearer sk_<key id>_<secret>`',
  });
  for (const id of [
    'GenerationRequest',
    'Generation',
    'GenerationEvent',
    'Problem',
    'OpenAiImageRequest',
    'Model',
  ]) {
    assert.ok(doc.components.schemas[id], id);
  }
  const create = doc.paths['/v1/generations']!['post']!;
  assert.ok(create.responses['400']!.content!['application/problem+json']);
  const request = doc.components.schemas['GenerationRequest'] as {
    properties: Record<string, unknown>;
    required: string[];
  };
  assert.deepEqual(request.required, ['prompt']);
  assert.ok(request.properties['aspect_ratio']);
});

test('/docs is a self-contained HTML reference', async () => {
  const res = await s.call('GET', '/docs');
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /text\/html/);
  const html = await res.text();
  assert.match(html, /POST<\/span> <code>\/v1\/generations<\/code>/);
  assert.match(html, /id="schema-Generation"/);
  assert.match(html, /id="error-idempotency_conflict"/);
  assert.doesNotMatch(html, /<script[^>]+src=|<link[^>]+stylesheet/);
});

test('unknown paths are 404 and wrong methods 405 with Allow, as problem+json', async () => {
  const missing = await s.call('GET', '/v2/nothing');
  assert.equal(missing.status, 404);
  assert.equal(missing.headers.get('content-type'), 'application/problem+json');
  ProblemSchema.parse(await missing.json());
  const wrong = await s.call('DELETE', '/v1/generations');
  assert.equal(wrong.status, 405);
  assert.equal(wrong.headers.get('allow'), 'GET, HEAD, POST');
  assert.equal(((await wrong.json()) as { code: string }).code, 'method_not_allowed');
  const put = await s.call('PUT', '/v1/generations/gen_01M889VXD4MTCPREBJNPFH520H/cancel');
  assert.equal(put.status, 405);
  assert.equal(put.headers.get('allow'), 'POST');
});

test('a store failure is a 500 problem with the request id, not a crash', async () => {
  const { app } = s.appWith(
    {},
    {
      keys: {
        get() {
          throw new Error('table gone');
        },
        touchLastUsed() {
          throw new Error('table gone');
        },
      },
    },
  );
  const res = await app.request('/v1/models', {
    headers: { authorization: `Bearer ${s.a.token}`, 'x-request-id': 'req-123' },
  });
  assert.equal(res.status, 500);
  const p = (await res.json()) as { code: string; request_id: string; detail: string };
  assert.equal(p.code, 'internal');
  assert.equal(p.request_id, 'req-123');
  assert.doesNotMatch(p.detail, /table gone/);
});
