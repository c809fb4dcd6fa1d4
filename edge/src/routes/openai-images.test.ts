import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { OpenAiImageResponseSchema } from '@sd3/shared';
import sharp from 'sharp';
import { type EdgeStack, startEdgeStack } from '../test-support/edge-stack.js';

let s: EdgeStack;
before(async () => {
  s = await startEdgeStack({ tuning: { openAiWaitSeconds: 10 } });
});
after(() => s.stop());

const post = (json: unknown, app = s.app) =>
  app.request('/v1/images/generations', {
    method: 'POST',
    headers: { authorization: `Bearer ${s.a.token}`, 'content-type': 'application/json' },
    body: JSON.stringify(json),
  });

test('response_format url: size maps to width/height, the runner finishes, URLs fetch the images', async () => {
  await s.runner.receiveAll('tiny');
  const loop = s.runner.loop('tiny');
  try {
    const res = await post({ prompt: 'a lighthouse', size: '96x64', n: 2, user: 'end-user', quality: 'hd' });
    assert.equal(res.status, 200, await res.clone().text());
    const body = OpenAiImageResponseSchema.parse(await res.json());
    assert.equal(body.data.length, 2);
    assert.ok(Math.abs(body.created - Date.now() / 1000) < 60);
    const png = Buffer.from(await (await fetch(body.data[0]!.url!)).arrayBuffer());
    const meta = await sharp(png).metadata();
    assert.deepEqual([meta.width, meta.height], [96, 64]);
    const id = res.headers.get('location')!.split('/').pop()!;
    const record = await s.runner.getRecord(id);
    assert.equal(record.user, 'end-user');
  } finally {
    await loop.stop();
  }
});

test('response_format b64_json returns the output bytes', async () => {
  await s.runner.receiveAll('tiny');
  const loop = s.runner.loop('tiny');
  try {
    const res = await post({ prompt: 'a lighthouse', response_format: 'b64_json' });
    assert.equal(res.status, 200, await res.clone().text());
    const body = OpenAiImageResponseSchema.parse(await res.json());
    assert.equal(body.data[0]!.url, undefined);
    const meta = await sharp(Buffer.from(body.data[0]!.b64_json!, 'base64')).metadata();
    assert.deepEqual([meta.format, meta.width, meta.height], ['png', 64, 64]);
  } finally {
    await loop.stop();
  }
});

test('not finished in time -> 504 problem with the generation id to poll', async () => {
  const { app } = s.appWith({}, { tuning: { openAiWaitSeconds: 0.3, pollIntervalMs: 50 } });
  const res = await post({ prompt: 'slow' }, app);
  assert.equal(res.status, 504);
  const p = (await res.json()) as { code: string; generation_id: string };
  assert.equal(p.code, 'generation_timeout');
  assert.match(p.generation_id, /^gen_/);
  assert.equal(res.headers.get('location'), `/v1/generations/${p.generation_id}`);
  const job = await s.call('GET', `/v1/generations/${p.generation_id}`, { token: s.a.token });
  assert.equal(job.status, 200);
});

test('bad input names the OpenAI field: size, n, response_format, unknown fields, unknown model', async () => {
  const cases: [unknown, string[]][] = [
    [{ prompt: 'x', size: 'big' }, ['size']],
    [{ prompt: 'x', size: '100x100' }, ['size']],
    [{ prompt: 'x', size: '4096x4096' }, ['size']],
    [{ prompt: 'x', n: 10, response_format: 'png' }, ['n', 'response_format']],
    [{ prompt: 'x', colour: 'red' }, ['colour']],
    [{ prompt: 'x', model: 'dall-e-3' }, ['model']],
    [{}, ['prompt']],
  ];
  for (const [body, fields] of cases) {
    const res = await post(body);
    assert.ok(res.status === 400 || res.status === 422, `${JSON.stringify(body)} -> ${res.status}`);
    const p = (await res.json()) as { errors: { field: string }[] };
    assert.deepEqual(p.errors.map((e) => e.field).sort(), fields, JSON.stringify(body));
  }
});
