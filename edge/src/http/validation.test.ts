import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { crc32, deflateSync } from 'node:zlib';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { LIMITS } from '@sd3/shared';
import sharp from 'sharp';
import { type EdgeStack, startEdgeStack } from '../test-support/edge-stack.js';

let s: EdgeStack;
before(async () => {
  s = await startEdgeStack();
});
after(() => s.stop());

interface ProblemBody {
  status: number;
  code: string;
  detail: string;
  errors?: { field: string; message: string }[];
  request_id?: string;
}

async function problem(res: Response, status: number): Promise<ProblemBody> {
  assert.equal(res.status, status, await res.clone().text());
  assert.equal(res.headers.get('content-type'), 'application/problem+json');
  const body = (await res.json()) as ProblemBody;
  assert.equal(body.status, status);
  assert.ok(body.request_id);
  return body;
}

const fields = (p: ProblemBody) => (p.errors ?? []).map((e) => e.field).sort();

const post = (json: unknown, headers: Record<string, string> = {}) =>
  s.call('POST', '/v1/generations', { token: s.a.token, json, headers });

describe('body fields', () => {
  test('every bad field is named at once (400)', async () => {
    const p = await problem(
      await post({
        prompt: '',
        width: 100,
        height: 64,
        n: 9,
        seed: -1,
        steps: 2.5,
        output_format: 'gif',
        webhook_url: 'ftp://x',
        colour: 'red',
      }),
      400,
    );
    assert.equal(p.code, 'invalid_request');
    assert.deepEqual(fields(p), [
      'colour',
      'n',
      'output_format',
      'prompt',
      'seed',
      'steps',
      'webhook_url',
      'width',
    ]);
  });

  test('missing prompt, wrong types, unknown model', async () => {
    assert.deepEqual(fields(await problem(await post({}), 400)), ['prompt']);
    assert.match((await problem(await post({}), 400)).errors![0]!.message, /required/);
    const wrong = await problem(await post({ prompt: 5, n: '2', previews: 'yes' }), 400);
    assert.deepEqual(fields(wrong), ['n', 'previews', 'prompt']);
    // A value of the wrong type is named as such, not as missing.
    assert.deepEqual(Object.fromEntries(wrong.errors!.map((e) => [e.field, e.message])), {
      prompt: 'expected string, received number',
      n: 'expected number, received string',
      previews: 'expected boolean, received string',
    });
    const unknown = await problem(await post({ prompt: 'x', model: 'dall-e-3' }), 400);
    assert.deepEqual(fields(unknown), ['model']);
    assert.match(unknown.errors![0]!.message, /unknown model/);
    assert.deepEqual(fields(await problem(await post({ prompt: 'x', model: 'nope', n: 0 }), 400)), [
      'model',
      'n',
    ]);
    assert.deepEqual(fields(await problem(await post(['prompt']), 400)), ['']);
    assert.deepEqual(fields(await problem(await post({ prompt: 'x', strength: 0.5 }), 400)), ['strength']);
  });

  test("the model's limits -> 422 naming the field", async () => {
    const p = await problem(await post({ prompt: 'x', width: 1024, height: 1024, steps: 51 }), 422);
    assert.equal(p.code, 'unprocessable');
    assert.deepEqual(fields(p), ['steps', 'width']);
  });
});

describe('transport', () => {
  test('wrong content type -> 415', async () => {
    const res = await s.call('POST', '/v1/generations', {
      token: s.a.token,
      body: 'prompt=x',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    assert.deepEqual(fields(await problem(res, 415)), ['Content-Type']);
    const none = await s.call('POST', '/v1/generations', { token: s.a.token, body: '{"prompt":"x"}' });
    assert.equal(none.status, 415);
  });

  test('bad JSON, empty body, bad UTF-8 -> 400 naming the body', async () => {
    const send = (body: string | Uint8Array) =>
      s.call('POST', '/v1/generations', {
        token: s.a.token,
        body,
        headers: { 'content-type': 'application/json' },
      });
    const bad = await problem(await send('{"prompt": "x",'), 400);
    assert.deepEqual(fields(bad), ['body']);
    assert.match(bad.detail, /not valid JSON/);
    assert.deepEqual(fields(await problem(await send(''), 400)), ['body']);
    assert.deepEqual(fields(await problem(await send(new Uint8Array([0x7b, 0xff, 0x7d])), 400)), ['body']);
  });

  test('oversized body -> 413, by declared length and by streamed length', async () => {
    const big = `{"prompt":"${'a'.repeat(LIMITS.maxBodyBytes)}"}`;
    assert.deepEqual(fields(await problem(await post(JSON.parse(big)), 413)), ['body']);
    // No content-length: a stream that grows past the limit.
    const chunk = new Uint8Array(1024 * 1024).fill(0x61);
    let sent = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent === 0) controller.enqueue(new TextEncoder().encode('{"prompt":"'));
        if (sent > LIMITS.maxBodyBytes + 2 * chunk.length) return controller.close();
        sent += chunk.length;
        controller.enqueue(chunk);
      },
    });
    const res = await s.app.request('/v1/generations', {
      method: 'POST',
      headers: { authorization: `Bearer ${s.a.token}`, 'content-type': 'application/json' },
      body: stream,
      duplex: 'half',
    } as RequestInit);
    await problem(res, 413);
  });

  test('bad headers: Idempotency-Key, Prefer, Last-Event-ID', async () => {
    assert.deepEqual(
      fields(await problem(await post({ prompt: 'x' }, { 'idempotency-key': 'x'.repeat(256) }), 400)),
      ['Idempotency-Key'],
    );
    assert.deepEqual(
      fields(await problem(await post({ prompt: 'x' }, { 'idempotency-key': 'tab\there' }), 400)),
      ['Idempotency-Key'],
    );
    for (const prefer of ['wait=61', 'wait=abc', 'wait=-1', 'wait']) {
      assert.deepEqual(
        fields(await problem(await post({ prompt: 'x' }, { prefer }), 400)),
        ['Prefer'],
        prefer,
      );
    }
    const created = await post({ prompt: 'x' });
    const { id } = (await created.json()) as { id: string };
    for (const last of ['nonsense', `${id}.x`, 'gen_OTHER.0001']) {
      const res = await s.call('GET', `/v1/generations/${id}/events`, {
        token: s.a.token,
        headers: { 'last-event-id': last },
      });
      assert.deepEqual(fields(await problem(res, 400)), ['Last-Event-ID'], last);
    }
  });

  test('junk ids -> 404 before any lookup; bad list queries -> 400 naming the parameter', async () => {
    for (const id of [
      'x',
      'gen_short',
      '..%2F..%2Fetc',
      `gen_${'A'.repeat(300)}`,
      'gen_0000000000000000000000000u',
    ]) {
      await problem(await s.call('GET', `/v1/generations/${id}`, { token: s.a.token }), 404);
      await problem(await s.call('POST', `/v1/generations/${id}/cancel`, { token: s.a.token }), 404);
    }
    assert.deepEqual(
      fields(await problem(await s.call('GET', '/v1/generations?limit=0', { token: s.a.token }), 400)),
      ['limit'],
    );
    assert.deepEqual(
      fields(
        await problem(
          await s.call('GET', '/v1/generations?limit=abc&status=done', { token: s.a.token }),
          400,
        ),
      ),
      ['limit', 'status'],
    );
    assert.deepEqual(
      fields(
        await problem(
          await s.call('GET', '/v1/generations?cursor=bm90LWEtY3Vyc29y', { token: s.a.token }),
          400,
        ),
      ),
      ['cursor'],
    );
  });
});

/** A PNG whose header claims a huge size over a tiny compressed stream: a decompression bomb. */
function pngBomb(width: number, height: number): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body));
    return Buffer.concat([len, body, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 0, 0, 0, 0], 8); // 8-bit greyscale
  const rows = deflateSync(Buffer.alloc((width + 1) * 64));
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', rows),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

describe('img2img image', () => {
  const png = (w: number, h: number) =>
    sharp({ create: { width: w, height: h, channels: 3, background: '#336699' } })
      .png()
      .toBuffer();

  test('a PNG data URL is checked, stored under inputs/ and only its key travels in the message', async () => {
    await s.runner.receiveAll('tiny');
    const bytes = await png(64, 48);
    const res = await post({
      prompt: 'x',
      image: `data:image/png;base64,${bytes.toString('base64')}`,
      strength: 0.4,
    });
    assert.equal(res.status, 202, await res.clone().text());
    const job = (await res.json()) as { id: string; image_to_image: boolean; params: { strength: number } };
    assert.equal(job.image_to_image, true);
    assert.equal(job.params.strength, 0.4);
    const record = await s.runner.getRecord(job.id);
    assert.equal(record.inputImageKey, `inputs/${s.a.tenantId}/${job.id}/image.png`);
    const stored = await s.s3.send(
      new GetObjectCommand({ Bucket: s.resources.bucket, Key: record.inputImageKey }),
    );
    assert.deepEqual(Buffer.from(await stored.Body!.transformToByteArray()), bytes);
    const [message] = await s.runner.receiveAll('tiny');
    assert.deepEqual(message!.payload.inputs, { image: record.inputImageKey });
    assert.ok(!JSON.stringify(message!.payload).includes(bytes.toString('base64').slice(0, 40)));
  });

  test('bare base64 JPEG and WebP are accepted', async () => {
    const jpeg = await sharp({ create: { width: 32, height: 32, channels: 3, background: '#fff' } })
      .jpeg()
      .toBuffer();
    assert.equal((await post({ prompt: 'x', image: jpeg.toString('base64') })).status, 202);
    const webp = await sharp({ create: { width: 32, height: 32, channels: 3, background: '#000' } })
      .webp()
      .toBuffer();
    assert.equal((await post({ prompt: 'x', image: webp.toString('base64url') })).status, 202);
  });

  test('not an image, GIF, not base64, too big, too large a side, a decompression bomb -> 4xx naming image', async () => {
    const gif = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#f00' } })
      .gif()
      .toBuffer();
    const wide = await sharp({ create: { width: 4100, height: 16, channels: 3, background: '#000' } })
      .png()
      .toBuffer();
    const bomb = pngBomb(20000, 20000);
    const truncated = (await png(64, 64)).subarray(0, 60);
    const cases: [string, number, RegExp][] = [
      [Buffer.from('hello, not an image').toString('base64'), 400, /not a readable image/],
      [gif.toString('base64'), 400, /gif images are not accepted/],
      ['!!!not base64!!!', 400, /neither base64/],
      ['data:image/png,rawtext', 400, /base64-encoded/],
      [wide.toString('base64'), 400, /4100x16/],
      [bomb.toString('base64'), 400, /more pixels than 4096x4096/],
      [truncated.toString('base64'), 400, /image/],
      [Buffer.alloc(LIMITS.maxInputImageBytes + 10).toString('base64'), 413, /at most/],
    ];
    for (const [image, status, message] of cases) {
      const p = await problem(await post({ prompt: 'x', image }), status);
      assert.deepEqual(fields(p), ['image']);
      assert.match(p.errors![0]!.message, message);
    }
  });
});
