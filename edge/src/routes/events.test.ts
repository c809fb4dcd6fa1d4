import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { type JobEvent, JobEventSchema } from '@sd3/shared';
import { type EdgeStack, startEdgeStack } from '../test-support/edge-stack.js';

let s: EdgeStack;
before(async () => {
  s = await startEdgeStack({ tuning: { pollIntervalMs: 50, sseKeepAliveMs: 200 } });
});
after(() => s.stop());

interface SseMessage {
  id?: string;
  event?: string;
  data?: string;
  comment?: string;
}

/** Reads SSE messages from a response body as they arrive. */
async function* messages(res: Response): AsyncGenerator<SseMessage> {
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return;
    buffer += value;
    let end = buffer.indexOf('\n\n');
    while (end >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const msg: SseMessage = {};
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) msg.comment = line.slice(1).trim();
        const m = /^(id|event|data): ?(.*)$/.exec(line);
        if (m) msg[m[1] as 'id' | 'event' | 'data'] = m[2]!;
      }
      yield msg;
      end = buffer.indexOf('\n\n');
    }
  }
}

async function createJob(): Promise<string> {
  const res = await s.call('POST', '/v1/generations', { token: s.a.token, json: { prompt: 'stream me' } });
  return ((await res.json()) as { id: string }).id;
}

test('replays recorded events, streams live ones until the terminal event, sends keep-alives', async () => {
  const id = await createJob();
  const res = await s.call('GET', `/v1/generations/${id}/events`, { token: s.aRead.token });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
  const seen: JobEvent[] = [];
  let keepAlives = 0;
  const runner = (async () => {
    await new Promise((r) => setTimeout(r, 450));
    await s.runner.start(id);
    await s.runner.progress(id, 1);
    await s.runner.progress(id, 2);
    await s.runner.succeed(id);
  })();
  for await (const msg of messages(res)) {
    if (msg.comment === 'keep-alive') keepAlives++;
    if (!msg.data) continue;
    const event = JobEventSchema.parse(JSON.parse(msg.data));
    assert.equal(msg.id, event.id);
    assert.equal(msg.event, event.type);
    seen.push(event);
  }
  await runner;
  assert.deepEqual(
    seen.map((e) => e.type),
    [
      'generation.queued',
      'generation.started',
      'generation.progress',
      'generation.progress',
      'generation.succeeded',
    ],
  );
  assert.deepEqual(
    seen.map((e) => e.id),
    [0, 1, 2, 3, 4].map((i) => `${id}.000${i}`),
  );
  assert.ok(keepAlives >= 1, 'a keep-alive comment while idle');
});

test('Last-Event-ID resumes after that event; a finished job streams the rest and closes', async () => {
  const id = await createJob();
  await s.runner.start(id);
  await s.runner.progress(id, 1);
  await s.runner.succeed(id);
  const res = await s.call('GET', `/v1/generations/${id}/events`, {
    token: s.a.token,
    headers: { 'last-event-id': `${id}.0001` },
  });
  const types: string[] = [];
  for await (const msg of messages(res)) if (msg.event) types.push(msg.event);
  assert.deepEqual(types, ['generation.progress', 'generation.succeeded']);
  const last = await s.call('GET', `/v1/generations/${id}/events`, {
    token: s.a.token,
    headers: { 'last-event-id': `${id}.0003` },
  });
  let count = 0;
  for await (const msg of messages(last)) if (msg.event) count++;
  assert.equal(count, 0);
});

test('a canceled job ends the stream with generation.canceled', async () => {
  const id = await createJob();
  const res = await s.call('GET', `/v1/generations/${id}/events`, { token: s.a.token });
  setTimeout(() => void s.call('POST', `/v1/generations/${id}/cancel`, { token: s.a.token }), 150);
  const types: string[] = [];
  for await (const msg of messages(res)) if (msg.event) types.push(msg.event);
  assert.deepEqual(types, ['generation.queued', 'generation.canceled']);
});

test('live previews: the job shows the latest, SSE carries each image live, replays only the latest', async () => {
  const res0 = await s.call('POST', '/v1/generations', {
    token: s.a.token,
    json: { prompt: 'preview me', previews: true },
  });
  const created = (await res0.json()) as {
    id: string;
    preview: unknown;
    params: { previews?: boolean; steps: number };
  };
  const total = created.params.steps;
  const id = created.id;
  assert.equal(created.preview, null, 'no preview yet');
  assert.equal(created.params.previews, true);
  const res = await s.call('GET', `/v1/generations/${id}/events`, { token: s.a.token });
  const pause = () => new Promise((r) => setTimeout(r, 200));
  const runner = (async () => {
    await s.runner.start(id);
    await pause();
    await s.runner.preview(id, 1);
    await pause();
    await s.runner.preview(id, 2);
    await pause();
    await s.runner.succeed(id);
  })();
  const live: JobEvent[] = [];
  for await (const msg of messages(res)) {
    if (msg.event === 'generation.preview') live.push(JSON.parse(msg.data!) as JobEvent);
  }
  await runner;
  assert.deepEqual(
    live.map((e) => e.data['step']),
    [1, 2],
  );
  const images = live.map((e) => e.data['image'] as string);
  for (const [i, image] of images.entries()) {
    assert.match(image, /^data:image\/jpeg;base64,[A-Za-z0-9+/]+=*$/, `preview ${i + 1} carries its image`);
    assert.equal(live[i]!.data['width'], 16);
    assert.equal(live[i]!.data['height'], 16);
    assert.equal(live[i]!.data['total_steps'], total);
  }
  assert.notEqual(images[0], images[1], 'each live event gets its own image');
  const job = (await (await s.call('GET', `/v1/generations/${id}`, { token: s.a.token })).json()) as {
    preview: { step: number; total_steps: number; image: string; width: number; height: number };
  };
  assert.deepEqual(job.preview, { step: 2, total_steps: total, image: images[1], width: 16, height: 16 });
  // A replay after the fact: the image of step 1 is gone, step 2 is still the latest.
  const replay = await s.call('GET', `/v1/generations/${id}/events`, { token: s.a.token });
  const replayed: JobEvent[] = [];
  for await (const msg of messages(replay)) {
    if (msg.event === 'generation.preview') replayed.push(JSON.parse(msg.data!) as JobEvent);
  }
  assert.deepEqual(replayed[0]!.data, { step: 1, total_steps: total });
  assert.equal(replayed[1]!.data['image'], images[1]);
});

test('a job without previews has preview null and params.previews false', async () => {
  const res = await s.call('POST', '/v1/generations', { token: s.a.token, json: { prompt: 'no preview' } });
  const job = (await res.json()) as { preview: unknown; params: { previews?: boolean } };
  assert.equal(job.preview, null);
  assert.equal(job.params.previews, false);
  const bad = await s.call('POST', '/v1/generations', {
    token: s.a.token,
    json: { prompt: 'x', previews: 'yes' },
  });
  assert.equal(bad.status, 400);
  assert.match(await bad.text(), /previews/);
});
