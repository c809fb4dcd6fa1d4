/**
 * Live previews end to end over real HTTP: the local stack's edge and a runner process with the
 * tiny model. A job with `previews: true` streams `generation.preview` events whose images decode,
 * and the finished job keeps its latest preview.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { JobEvent } from '@sd3/shared';
import sharp from 'sharp';
import { type LocalStack, startLocalStack } from '../../local/stack.js';
import { ApiClient } from './api-client.js';

let dir: string;
let stack: LocalStack;
let api: ApiClient;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sd3-e2e-previews-'));
  stack = await startLocalStack({ tinyModelDir: join(dir, 'tiny'), edgeLogs: false });
  api = new ApiClient(stack.url, stack.apiKey.token);
});
after(async () => {
  await stack?.stop();
  await rm(dir, { recursive: true, force: true });
});

/** The bytes and sharp metadata of a `data:image/…;base64,…` preview. */
async function decode(uri: string): Promise<{ format: string | undefined; width: number; height: number }> {
  const m = /^data:image\/(jpeg|webp);base64,([A-Za-z0-9+/]+=*)$/.exec(uri);
  assert.ok(m, `a data URI: ${uri.slice(0, 40)}…`);
  const meta = await sharp(Buffer.from(m[2]!, 'base64')).metadata();
  assert.equal(meta.format, m[1]);
  return { format: meta.format, width: meta.width ?? 0, height: meta.height ?? 0 };
}

test('previews: true streams preview events with decodable images; the job keeps the latest', async () => {
  const created = await api.create({
    prompt: 'a glowing jellyfish',
    steps: 40,
    width: 256,
    height: 256,
    previews: true,
  });
  assert.equal(created.status, 202, JSON.stringify(created.body));
  assert.equal(created.body.params.previews, true);
  const stream = await fetch(`${stack.url}/v1/generations/${created.body.id}/events`, {
    headers: { authorization: `Bearer ${stack.apiKey.token}` },
  });
  const text = await stream.text(); // ends after the terminal event
  const events = text
    .split('\n')
    .filter((l) => l.startsWith('data:'))
    .map((l) => JSON.parse(l.slice(5)) as JobEvent);
  assert.equal(events.at(-1)?.type, 'generation.succeeded');
  const previews = events.filter((e) => e.type === 'generation.preview');
  assert.ok(previews.length >= 1, events.map((e) => e.type).join(','));
  assert.ok(previews.length <= 8, `${previews.length} previews`);
  const withImage = previews.filter((e) => typeof e.data['image'] === 'string');
  assert.ok(withImage.length >= 1, 'a live subscriber gets at least the latest image');
  for (const e of withImage) {
    const meta = await decode(e.data['image'] as string);
    // 256x256 with the tiny model's 8x VAE: a 32x32 latent, previewed at that size.
    assert.deepEqual([meta.width, meta.height], [e.data['width'], e.data['height']]);
    assert.deepEqual([meta.width, meta.height], [32, 32]);
    assert.ok((e.data['step'] as number) < 40, 'no preview after the final step');
  }
  const job = (await api.get(created.body.id)).body;
  assert.equal(job.status, 'succeeded');
  assert.ok(job.preview, 'the finished job has its latest preview');
  assert.equal(job.preview.step, previews.at(-1)!.data['step']);
  assert.equal(job.preview.total_steps, 40);
  const meta = await decode(job.preview.image);
  assert.deepEqual([meta.width, meta.height], [job.preview.width, job.preview.height]);
});

test('without previews the job has none and no preview event is streamed', async () => {
  const created = await api.create({ prompt: 'a plain teapot', steps: 6, width: 64, height: 64 });
  const job = await api.waitFor(created.body.id);
  assert.equal(job.status, 'succeeded');
  assert.equal(job.preview, null);
  const stream = await fetch(`${stack.url}/v1/generations/${job.id}/events`, {
    headers: { authorization: `Bearer ${stack.apiKey.token}` },
  });
  assert.doesNotMatch(await stream.text(), /generation\.preview/);
});
