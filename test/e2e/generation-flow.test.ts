/**
 * End to end through real HTTP: edge (Node server) -> DynamoDB (dynalite) + SQS/S3 (fauxqs) ->
 * a runner process with the tiny model -> presigned download.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Job, JobEvent } from '@sd3/shared';
import sharp from 'sharp';
import { type LocalStack, startLocalStack } from '../../local/stack.js';
import { ApiClient } from './api-client.js';

let dir: string;
let stack: LocalStack;
let api: ApiClient;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sd3-e2e-'));
  stack = await startLocalStack({ tinyModelDir: join(dir, 'tiny'), edgeLogs: false });
  api = new ApiClient(stack.url, stack.apiKey.token);
});
after(async () => {
  await stack.stop();
  await rm(dir, { recursive: true, force: true });
});

async function download(job: Job, index = 0): Promise<Buffer> {
  const res = await fetch(job.outputs[index]!.url);
  assert.equal(res.status, 200);
  return Buffer.from(await res.arrayBuffer());
}

describe('generations', () => {
  test('create, poll, download: a valid PNG of the requested size', async () => {
    const created = await api.create({ prompt: 'a red fox', width: 96, height: 64, steps: 6, seed: 7 });
    assert.equal(created.status, 202);
    assert.equal(created.body.status, 'queued');
    assert.equal(created.body.params.seed, 7);
    const job = await api.waitFor(created.body.id);
    assert.equal(job.status, 'succeeded', JSON.stringify(job.error));
    assert.equal(job.outputs.length, 1);
    const png = await download(job);
    const meta = await sharp(png).metadata();
    assert.equal(meta.format, 'png');
    assert.equal(meta.width, 96);
    assert.equal(meta.height, 64);
    assert.ok(job.timings.denoise_ms !== undefined && job.timings.total_ms !== undefined);
    assert.equal(job.progress?.total_steps, 6);
  });

  test('the same seed twice gives identical bytes; another seed does not', async () => {
    const params = { prompt: 'a teapot', steps: 4, seed: 1234 };
    const [a, b, c] = await Promise.all([
      api.create(params),
      api.create(params),
      api.create({ ...params, seed: 1235 }),
    ]);
    const [ja, jb, jc] = await Promise.all([
      api.waitFor(a.body.id),
      api.waitFor(b.body.id),
      api.waitFor(c.body.id),
    ]);
    assert.notEqual(ja.id, jb.id);
    assert.deepEqual(await download(ja), await download(jb));
    assert.notDeepEqual(await download(ja), await download(jc));
  });

  test('an idempotent retry returns the same job; a changed body is a conflict', async () => {
    const headers = { 'idempotency-key': `e2e-${Date.now()}` };
    const first = await api.create({ prompt: 'a boat', steps: 2 }, headers);
    const again = await api.create({ prompt: 'a boat', steps: 2 }, headers);
    assert.equal(again.body.id, first.body.id);
    assert.equal(again.headers.get('idempotent-replayed'), 'true');
    const other = await api.create({ prompt: 'a car', steps: 2 }, headers);
    assert.equal(other.status, 409);
    assert.equal((other.body as unknown as { code: string }).code, 'idempotency_conflict');
  });

  test('Prefer: wait returns the finished job', async () => {
    const res = await api.create({ prompt: 'a tree', steps: 3 }, { prefer: 'wait=30' });
    assert.equal(res.status, 200);
    assert.equal(res.body.status, 'succeeded');
    assert.ok(res.body.outputs[0]!.url.startsWith('http'));
  });

  test('image-to-image through the API', async () => {
    const init = await sharp({
      create: { width: 80, height: 40, channels: 3, background: { r: 200, g: 30, b: 30 } },
    })
      .png()
      .toBuffer();
    const res = await api.create({
      prompt: 'a red wall',
      image: `data:image/png;base64,${init.toString('base64')}`,
      strength: 0.5,
      steps: 8,
      width: 64,
      height: 64,
      output_format: 'jpeg',
    });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    assert.equal(res.body.image_to_image, true);
    const job = await api.waitFor(res.body.id);
    assert.equal(job.status, 'succeeded', JSON.stringify(job.error));
    const meta = await sharp(await download(job)).metadata();
    assert.equal(meta.format, 'jpeg');
    assert.equal(meta.width, 64);
  });

  test('the OpenAI-compatible route answers synchronously with url and b64_json', async () => {
    const url = await api.request<{ data: { url?: string }[] }>('POST', '/v1/images/generations', {
      body: { prompt: 'a lamp', size: '64x64', n: 2 },
    });
    assert.equal(url.status, 200, JSON.stringify(url.body));
    assert.equal(url.body.data.length, 2);
    assert.equal((await fetch(url.body.data[0]!.url!)).status, 200);
    const b64 = await api.request<{ data: { b64_json?: string }[] }>('POST', '/v1/images/generations', {
      body: { prompt: 'a lamp', size: '64x64', response_format: 'b64_json' },
    });
    assert.equal(b64.status, 200);
    const meta = await sharp(Buffer.from(b64.body.data[0]!.b64_json!, 'base64')).metadata();
    assert.equal(meta.width, 64);
  });

  test('SSE shows queued, started, progress and succeeded', async () => {
    const res = await api.create({ prompt: 'a comet', steps: 60, width: 256, height: 256 });
    const stream = await fetch(`${stack.url}/v1/generations/${res.body.id}/events`, {
      headers: { authorization: `Bearer ${stack.apiKey.token}` },
    });
    assert.equal(stream.headers.get('content-type')?.split(';')[0], 'text/event-stream');
    const text = await stream.text(); // the stream ends after the terminal event
    const events = text
      .split('\n')
      .filter((l) => l.startsWith('data:'))
      .map((l) => JSON.parse(l.slice(5)) as JobEvent);
    const types = events.map((e) => e.type);
    assert.equal(types[0], 'generation.queued');
    assert.equal(types[1], 'generation.started');
    assert.ok(types.includes('generation.progress'), types.join(','));
    assert.equal(types.at(-1), 'generation.succeeded');
    assert.deepEqual(
      events.map((e) => e.id),
      [...events.map((e) => e.id)].sort(),
    );
  });

  test('bad input is answered 4xx with the field named, never 5xx', async () => {
    const cases: [unknown, string][] = [
      [{}, 'prompt'],
      [{ prompt: 'x', width: 100, height: 64 }, 'width'],
      [{ prompt: 'x', steps: 0 }, 'steps'],
      [{ prompt: 'x', n: 9 }, 'n'],
      [{ prompt: 'x', seed: -3 }, 'seed'],
      [{ prompt: 'x', image: 'bm90IGFuIGltYWdl' }, 'image'],
      [{ prompt: 'x', model: 'nope' }, 'model'],
      [{ prompt: 'x', webhook_url: 'not a url' }, 'webhook_url'],
    ];
    for (const [body, field] of cases) {
      const res = await api.create(body);
      assert.ok(res.status >= 400 && res.status < 500, `${JSON.stringify(body)} -> ${res.status}`);
      assert.equal(res.headers.get('content-type')?.split(';')[0], 'application/problem+json');
      const fields = ((res.body as unknown as { errors?: { field: string }[] }).errors ?? []).map(
        (e) => e.field,
      );
      assert.ok(fields.includes(field), `${JSON.stringify(body)}: ${JSON.stringify(res.body)}`);
    }
    const raw = await api.request('POST', '/v1/generations', {
      rawBody: '{"prompt":',
      headers: { 'content-type': 'application/json' },
    });
    assert.equal(raw.status, 400);
    const noAuth = await api.request('GET', '/v1/generations', { token: null });
    assert.equal(noAuth.status, 401);
  });
});
