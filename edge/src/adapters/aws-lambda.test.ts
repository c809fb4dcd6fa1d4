import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, test } from 'node:test';
import { type EdgeStack, startEdgeStack } from '../test-support/edge-stack.js';

let s: EdgeStack;
before(async () => {
  s = await startEdgeStack();
});
after(() => s.stop());

type StreamingHandler = (event: unknown, stream: Writable, context: unknown) => Promise<void>;

/**
 * The parts of the Lambda Node runtime's `awslambda` global that response streaming uses:
 * streamifyResponse marks the handler, HttpResponseStream.from carries the status and headers.
 */
function installLambdaRuntime(): { metadata: () => { statusCode: number; headers: Record<string, string> } } {
  let metadata: { statusCode: number; headers: Record<string, string> } | undefined;
  (globalThis as Record<string, unknown>)['awslambda'] = {
    streamifyResponse: (fn: StreamingHandler) => fn,
    HttpResponseStream: {
      from(stream: Writable, meta: { statusCode: number; headers: Record<string, string> }) {
        metadata = meta;
        return stream;
      },
    },
  };
  return {
    metadata: () => {
      if (!metadata) throw new Error('no response metadata written');
      return metadata;
    },
  };
}

function functionUrlEvent(method: string, path: string, headers: Record<string, string>, body?: string) {
  return {
    version: '2.0',
    routeKey: '$default',
    rawPath: path,
    rawQueryString: '',
    headers: { host: 'abc.lambda-url.us-east-1.on.aws', ...headers },
    requestContext: {
      accountId: 'anonymous',
      apiId: 'abc',
      domainName: 'abc.lambda-url.us-east-1.on.aws',
      domainPrefix: 'abc',
      http: { method, path, protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: 'test' },
      requestId: 'r-1',
      routeKey: '$default',
      stage: '$default',
      time: '01/Jan/2026:00:00:00 +0000',
      timeEpoch: 0,
    },
    isBase64Encoded: false,
    ...(body !== undefined ? { body } : {}),
  };
}

async function invoke(handler: StreamingHandler, event: unknown): Promise<string> {
  const chunks: Buffer[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      chunks.push(Buffer.from(chunk));
      done();
    },
  });
  await handler(event, sink, {});
  return Buffer.concat(chunks).toString('utf8');
}

test('the Lambda adapter turns function-URL events into streamed responses, deps from the environment', async () => {
  const runtime = installLambdaRuntime();
  Object.assign(process.env, s.env);
  const { handler } = (await import('./aws-lambda.js')) as unknown as { handler: StreamingHandler };

  const health = await invoke(handler, functionUrlEvent('GET', '/healthz', {}));
  assert.equal(runtime.metadata().statusCode, 200);
  assert.deepEqual(JSON.parse(health), { status: 'ok' });

  const created = await invoke(
    handler,
    functionUrlEvent(
      'POST',
      '/v1/generations',
      { authorization: `Bearer ${s.a.token}`, 'content-type': 'application/json' },
      JSON.stringify({ prompt: 'from lambda' }),
    ),
  );
  assert.equal(runtime.metadata().statusCode, 202);
  const job = JSON.parse(created) as { id: string; status: string };
  assert.equal(job.status, 'queued');
  assert.equal((await s.runner.getRecord(job.id)).tenantId, s.a.tenantId);

  const missing = await invoke(
    handler,
    functionUrlEvent('GET', '/v1/generations/gen_x', { authorization: `Bearer ${s.a.token}` }),
  );
  assert.equal(runtime.metadata().statusCode, 404);
  assert.equal(runtime.metadata().headers['content-type'], 'application/problem+json');
  assert.equal(JSON.parse(missing).code, 'not_found');
});
