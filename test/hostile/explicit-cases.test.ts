/**
 * Hostile input, case by case, in process against the real edge app over the emulators: every
 * answer is checked by the same rule as the property test (no 5xx, problem+json with type, title,
 * status and detail) and, where the answer is determined, by its status and the field it names.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { crc32, deflateSync } from 'node:zlib';
import { LIMITS } from '@sd3/shared';
import { answerIssues, type HostileStack, readAnswer, startHostileStack } from './support.js';

let h: HostileStack;
before(async () => {
  h = await startHostileStack();
});
after(() => h.stop());

interface Sent {
  method?: string;
  headers?: Record<string, string>;
  body?: string | Uint8Array | ReadableStream<Uint8Array>;
  /** Send the tenant A key (default true). */
  auth?: boolean;
}

interface Checked {
  status: number;
  headers: Headers;
  body: Record<string, unknown>;
  fields: string[];
}

/** Sends one request and checks the answer passes the hostile-input rule. */
async function send(path: string, o: Sent = {}): Promise<Checked> {
  const headers: Record<string, string> = { ...o.headers };
  if (o.auth !== false && headers['authorization'] === undefined) {
    headers['authorization'] = `Bearer ${h.stack.a.token}`;
  }
  const init: RequestInit & { duplex?: 'half' } = { method: o.method ?? 'GET', headers };
  if (o.body !== undefined) init.body = o.body;
  if (o.body instanceof ReadableStream) init.duplex = 'half';
  const res = await h.app.fetch(new Request(`http://edge.test${path}`, init));
  const answer = await readAnswer(res);
  const issues = answerIssues(init.method!, path, answer);
  assert.deepEqual(issues, [], `${init.method} ${path.slice(0, 120)}`);
  const json = /json/.test(answer.contentType) && answer.body !== '';
  const body = json ? (JSON.parse(answer.body) as Record<string, unknown>) : {};
  const errors = (body['errors'] as { field: string }[] | undefined) ?? [];
  const fields = [...new Set(errors.map((e) => e.field))].sort();
  return { status: res.status, headers: res.headers, body, fields };
}

const postJson = (path: string, json: unknown, headers: Record<string, string> = {}) =>
  send(path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof json === 'string' ? json : JSON.stringify(json),
  });
const generate = (json: unknown, headers: Record<string, string> = {}) =>
  postJson('/v1/generations', json, headers);

function expect(got: Checked, status: number, fields?: string[], what = ''): void {
  assert.equal(got.status, status, `${what}: ${JSON.stringify(got.body).slice(0, 300)}`);
  if (fields) assert.deepEqual(got.fields, fields, what);
}

describe('bodies', () => {
  test('oversized bodies -> 413 on every JSON route, declared or streamed, without reading it all', async () => {
    const big = `{"prompt":"${'a'.repeat(LIMITS.maxBodyBytes)}"}`;
    for (const path of [
      '/v1/generations',
      '/v1/images/generations',
      `/v1/generations/${h.jobs.aSucceeded}/webhooks/resend`,
    ]) {
      expect(await postJson(path, big), 413, ['body'], path);
      // No Content-Length: a stream far larger than the limit; it must stop being read.
      let pulled = 0;
      const chunk = new Uint8Array(1024 * 1024).fill(0x61);
      const stream = new ReadableStream<Uint8Array>({
        pull(controller) {
          if (pulled >= 4 * LIMITS.maxBodyBytes) return controller.close();
          pulled += chunk.length;
          controller.enqueue(pulled === chunk.length ? new TextEncoder().encode('{"event_id":"') : chunk);
        },
      });
      const got = await send(path, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: stream,
      });
      expect(got, 413, ['body'], `${path} streamed`);
      assert.ok(pulled < LIMITS.maxBodyBytes + 4 * chunk.length, `${path} read ${pulled} bytes`);
    }
  });

  test('wrong content types -> 415 naming Content-Type', async () => {
    for (const type of [
      'text/plain',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=x',
      'application/jsonp',
      'json',
      'application/json\u00e9',
    ]) {
      const got = await send('/v1/generations', {
        method: 'POST',
        headers: { 'content-type': type },
        body: '{"prompt":"x"}',
      });
      expect(got, 415, ['Content-Type'], type);
    }
    const none = await send('/v1/images/generations', { method: 'POST', body: '{"prompt":"x"}' });
    expect(none, 415, ['Content-Type']);
  });

  test('invalid UTF-8, BOMs, broken and deeply nested JSON -> 400 naming the body or field', async () => {
    const bytes = (...b: number[]) => new Uint8Array(b);
    for (const body of [
      bytes(0x7b, 0xff, 0x7d),
      bytes(0x7b, 0x22, 0x70, 0x22, 0x3a, 0x22, 0xc3, 0x28, 0x22, 0x7d),
      bytes(0xed, 0xa0, 0x80),
      bytes(0xf4, 0x90, 0x80, 0x80),
      bytes(0xc0, 0xaf),
    ]) {
      const got = await send('/v1/generations', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
      });
      expect(got, 400, ['body']);
      assert.match(String(got.body['detail']), /UTF-8/);
    }
    expect(await generate('{"prompt":'), 400, ['body']);
    // A UTF-8 byte order mark is skipped, as RFC 8259 allows.
    expect(await generate('\ufeff{"prompt":"x","dry_run":true}'), 200);
    expect(await generate(`${'['.repeat(100_000)}${']'.repeat(100_000)}`), 400, ['']);
    expect(await generate(`{"prompt":${'{"a":'.repeat(50_000)}1${'}'.repeat(50_000)}}`), 400, ['prompt']);
    // A lone surrogate escape is valid JSON; the prompt is a string, so it is accepted as one.
    expect(await generate('{"prompt":"\\ud800","dry_run":true}'), 200);
  });
});

describe('numbers', () => {
  test('huge n, sizes and steps -> 400 or 422 naming each field', async () => {
    expect(await generate({ prompt: 'x', n: 1e9 }), 400, ['n']);
    expect(await generate({ prompt: 'x', n: 2 ** 53 + 2 }), 400, ['n']);
    expect(await generate({ prompt: 'x', width: 2 ** 31, height: 2 ** 31 }), 422, ['width']);
    expect(await generate({ prompt: 'x', width: 1e308, height: 16 }), 400, ['width']);
    expect(await generate({ prompt: 'x', steps: 1e6 }), 422, ['steps']);
    expect(await generate('{"prompt":"x","steps":1e999}'), 400, ['steps']);
    expect(await generate({ prompt: 'x', seed: 2 ** 32 }), 400, ['seed']);
    expect(await generate({ prompt: 'x', output_ttl_seconds: 1e12 }), 400, ['output_ttl_seconds']);
    expect(await generate({ prompt: 'x'.repeat(LIMITS.promptChars + 1) }), 400, ['prompt']);
  });

  test('negative and non-integer numbers, numbers as strings -> 400 naming each field', async () => {
    const got = await generate({
      prompt: 'x',
      n: -1,
      width: 63.5,
      height: -64,
      steps: 0.5,
      seed: -1,
      guidance_scale: -0.1,
      output_quality: 99.9,
      output_ttl_seconds: -60,
    });
    expect(got, 400, [
      'guidance_scale',
      'height',
      'n',
      'output_quality',
      'output_ttl_seconds',
      'seed',
      'steps',
      'width',
    ]);
    expect(await generate({ prompt: 'x', n: '2', steps: '4', width: '64', height: '64' }), 400, [
      'height',
      'n',
      'steps',
      'width',
    ]);
    expect(await generate({ prompt: 'x', strength: -0.5, image: 'aGVsbG8=' }), 400, ['strength']);
    expect(await postJson('/v1/images/generations', { prompt: 'x', n: -1, size: '-64x-64' }), 400, [
      'n',
      'size',
    ]);
  });
});

describe('prototype pollution', () => {
  test('__proto__, constructor and prototype keys in bodies are unknown fields; nothing is polluted', async () => {
    for (const key of ['__proto__', 'constructor', 'prototype']) {
      const raw = `{"prompt":"x","${key}":{"polluted":"yes","isAdmin":true},"dry_run":true}`;
      expect(await generate(raw), 400, [key], key);
      expect(await postJson('/v1/images/generations', raw.replace(',"dry_run":true', '')), 400, [key], key);
      expect(
        await postJson(
          `/v1/generations/${h.jobs.aSucceeded}/webhooks/resend`,
          `{"${key}":{"polluted":"yes"}}`,
        ),
        400,
        [key],
        key,
      );
      const nested = `{"prompt":"x","webhook_events":{"${key}":["generation.succeeded"]}}`;
      expect(await generate(nested), 400, ['webhook_events'], key);
    }
    assert.equal(({} as Record<string, unknown>)['polluted'], undefined);
    assert.equal(({} as Record<string, unknown>)['isAdmin'], undefined);
  });

  test('__proto__, constructor and prototype in query strings are ignored or named', async () => {
    for (const key of ['__proto__', 'constructor', 'prototype', '__proto__[polluted]']) {
      expect(await send(`/v1/generations?${key}=1&${key}=2`), 200, [], key);
      expect(await send(`/v1/generations?limit=1&${key}[limit]=5`), 200, [], key);
      const usage = await send(`/v1/usage?from=2026-01-01&to=2026-01-02&${key}=x`);
      expect(usage, 200, [], key);
    }
    expect(await send('/v1/generations?status=__proto__'), 400, ['status']);
    expect(await send('/v1/usage?from=2026-01-01&to=2026-01-02&group_by=constructor'), 400, ['group_by']);
    assert.equal(({} as Record<string, unknown>)['polluted'], undefined);
  });
});

describe('webhook_url', () => {
  test('CR/LF, spaces, control characters and credentials -> 400 naming webhook_url', async () => {
    for (const url of [
      'https://hooks.example.com/x\r\nX-Injected: 1',
      'https://hooks.example.com/x\nSet-Cookie: a=b',
      'https://hooks.example.com/\r\n\r\nGET / HTTP/1.1',
      'https://hooks.example.com/a b',
      ' https://hooks.example.com/',
      'https://hooks.example.com/\t',
      'https://hooks.example.com/\u0000',
      'https://hooks.example.com/\u0085',
      'https://user:secret@hooks.example.com/',
      'https://user@hooks.example.com/',
      'ftp://hooks.example.com/',
      'javascript:alert(1)',
      'file:///etc/passwd',
      'https://',
      `https://hooks.example.com/${'a'.repeat(2100)}`,
    ]) {
      expect(await generate({ prompt: 'x', webhook_url: url, dry_run: true }), 400, ['webhook_url'], url);
    }
  });

  test('plain http and IP literals are accepted at creation and refused at delivery (SSRF check)', async () => {
    for (const url of [
      'http://hooks.example.com/',
      'https://127.0.0.1/',
      'https://[::1]/',
      'https://169.254.169.254/latest/meta-data',
      'https://hooks.example.com/%0d%0aX-Injected:%201',
    ]) {
      expect(await generate({ prompt: 'x', webhook_url: url, dry_run: true }), 200, [], url);
    }
  });
});

describe('ids and paths', () => {
  test('path tricks in ids -> 404 problem, never another tenant or a file', async () => {
    const own = h.jobs.aSucceeded;
    const tricks = [
      '..',
      '..%2F..%2Fetc%2Fpasswd',
      '%2e%2e%2f%2e%2e',
      `${own}%2F..%2F${h.jobs.bSucceeded}`,
      `${own}%00`,
      '%00',
      `gen_${'A'.repeat(10_000)}`,
      'gen_ÄÖÜ0000000000000000000000',
      '%F0%9F%99%82',
      '%ZZ',
      '%',
      encodeURIComponent(`${own}\u0000`),
      h.jobs.bSucceeded,
      own.toLowerCase(),
      `${own}%20`,
      `%20${own}`,
    ];
    for (const id of tricks) {
      for (const [method, suffix] of [
        ['GET', ''],
        ['POST', '/cancel'],
        ['GET', '/events'],
        ['GET', '/webhooks'],
        ['POST', '/webhooks/resend'],
      ] as const) {
        expect(await send(`/v1/generations/${id}${suffix}`, { method }), 404, undefined, `${method} ${id}`);
      }
    }
    expect(await send(`/v1/generations/${own}/../${own}`), 200);
    expect(await send(`/v1/generations/${own}//events`), 404);
  });
});

describe('headers', () => {
  test('bad Authorization headers -> 401 problem with WWW-Authenticate', async () => {
    const { a } = h.stack;
    for (const value of [
      undefined,
      '',
      'Bearer',
      'Bearer ',
      'Token abc',
      `Basic ${Buffer.from(`${a.keyId}:${a.token}`).toString('base64')}`,
      `Bearer ${a.token.slice(0, -2)}`,
      `Bearer ${a.token}x`,
      `Bearer sk_${a.keyId}_${'A'.repeat(40)}`,
      `Bearer sk_${'z'.repeat(12)}_${'A'.repeat(40)}`,
      `Bearer ${a.token} ${a.token}`,
      `Bearer ${'x'.repeat(64 * 1024)}`,
      `Bearer sk_${a.keyId}_${'é'.repeat(40)}`,
      `Bearer sk_${a.keyId}_\u00ff\u00fe`,
      'Bearer sk___',
      `Bearer sk_${a.keyId}`,
    ]) {
      const headers: Record<string, string> = value === undefined ? {} : { authorization: value };
      const got = await send('/v1/models', { headers, auth: value !== undefined });
      expect(got, 401, undefined, String(value).slice(0, 40));
      assert.match(got.headers.get('www-authenticate') ?? '', /^Bearer/);
      assert.ok(!JSON.stringify(got.body).includes(a.token.slice(-20)), 'the secret is not echoed');
    }
    const readOnly = await generate({ prompt: 'x' }, { authorization: `Bearer ${h.stack.aRead.token}` });
    expect(readOnly, 403);
  });

  test('bad Idempotency-Key -> 400 naming it', async () => {
    for (const key of ['', ' ', 'x'.repeat(256), 'tab\there', 'ü', '\u00ff']) {
      expect(await generate({ prompt: 'x' }, { 'idempotency-key': key }), 400, ['Idempotency-Key'], key);
    }
    const first = await generate({ prompt: 'once', n: 1 }, { 'idempotency-key': 'hostile-1' });
    expect(first, 202);
    expect(await generate({ prompt: 'twice' }, { 'idempotency-key': 'hostile-1' }), 409);
    // The same key with a body that differs only by a polluting key is a different body.
    expect(
      await generate('{"prompt":"once","n":1,"__proto__":{}}', { 'idempotency-key': 'hostile-1' }),
      400,
      ['__proto__'],
    );
  });

  test('bad Prefer: wait values -> 400 naming Prefer; other preferences are ignored', async () => {
    for (const prefer of [
      'wait=61',
      'wait=-1',
      'wait=1.5',
      'wait=1e1',
      'wait=',
      'wait',
      'wait=0x10',
      'wait=9999999',
      'wait=0, wait=61',
      'wait=" 1"',
    ]) {
      expect(await generate({ prompt: 'x' }, { prefer }), 400, ['Prefer'], prefer);
    }
    const ok = await generate({ prompt: 'x' }, { prefer: 'respond-async, handling=lenient, wait=0' });
    expect(ok, 202);
    assert.equal(ok.headers.get('preference-applied'), 'wait=0');
  });

  test('bad Last-Event-ID -> 400 naming it; a good one replays after it', async () => {
    const id = h.jobs.aSucceeded;
    for (const last of ['nonsense', `${id}.`, `${id}.x`, `${id}.-1`, `${id}.1e3`, `${id}.9999999999`, '.1']) {
      const got = await send(`/v1/generations/${id}/events`, { headers: { 'last-event-id': last } });
      expect(got, 400, ['Last-Event-ID'], last);
    }
    const other = await send(`/v1/generations/${id}/events`, {
      headers: { 'last-event-id': `${h.jobs.bSucceeded}.0001` },
    });
    expect(other, 400, ['Last-Event-ID']);
    expect(await send(`/v1/generations/${id}/events`, { headers: { 'last-event-id': `${id}.1` } }), 200);
  });
});

describe('queries', () => {
  test('bad cursors and limits on the list -> 400 naming the parameter', async () => {
    for (const q of ['limit=0', 'limit=101', 'limit=-1', 'limit=1.5', 'limit=abc', 'limit=1e3', 'limit=']) {
      expect(await send(`/v1/generations?${q}`), 400, ['limit'], q);
    }
    const forged = Buffer.from(JSON.stringify({ c: 1, j: '../../x' })).toString('base64url');
    for (const cursor of [
      'bm90LWEtY3Vyc29y',
      '%00',
      'a'.repeat(600),
      forged,
      Buffer.from('{"__proto__":{"c":1}}').toString('base64url'),
      '%ZZ',
    ]) {
      expect(await send(`/v1/generations?cursor=${cursor}`), 400, ['cursor'], cursor);
    }
    expect(await send('/v1/generations?status=done&limit=x'), 400, ['limit', 'status']);
  });

  test('bad usage ranges -> 400 naming from, to or group_by', async () => {
    const cases: [string, string[]][] = [
      ['', ['from', 'to']],
      ['from=2026-01-02&to=2026-01-01', ['to']],
      ['from=2026-01-01&to=2026-01-01', ['to']],
      ['from=2020-01-01&to=2026-01-01', ['to']],
      ['from=2026-13-45&to=2026-14-01', ['from', 'to']],
      ['from=-271821-04-20&to=2026-01-01', ['from']],
      ['from=+275760-09-13&to=2026-01-01', ['from']],
      ['from=1700000000&to=1800000000', ['from', 'to']],
      ['from=2026-01-01T00:00:00Z&to=2026-01-01T00:00:00+99:99', ['to']],
      ['from=2026-01-01&to=2026-01-02&group_by=week', ['group_by']],
      ['from=%00&to=%ZZ', ['from', 'to']],
    ];
    for (const [q, fields] of cases) expect(await send(`/v1/usage?${q}`), 400, fields, q);
  });
});

describe('methods', () => {
  test('methods a route does not serve -> 405 with Allow; unknown paths -> 404', async () => {
    const patterns = h.routes.map((r) => ({
      method: r.method,
      regex: new RegExp(`^${r.path.replace(/:[a-z]+/g, '[^/]+')}$`),
    }));
    const served = (path: string) => new Set(patterns.filter((p) => p.regex.test(path)).map((p) => p.method));
    let checked = 0;
    for (const path of new Set(h.routes.map((r) => r.path.replace(':id', h.jobs.aSucceeded)))) {
      const methods = served(path);
      for (const method of ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'PROPFIND']) {
        if (methods.has(method)) continue;
        const got = await send(path, { method });
        expect(got, 405, undefined, `${method} ${path}`);
        const allow = got.headers.get('allow') ?? '';
        for (const m of methods) assert.ok(allow.includes(m), `${method} ${path}: Allow ${allow}`);
        checked += 1;
      }
    }
    assert.ok(checked > 40, `checked ${checked}`);
    expect(await send('/v2/generations'), 404);
    expect(await send('/v1/generations/x/y/z'), 404);
  });
});

/** A PNG: 8-bit greyscale `width`x`height` over the given rows, plus optional ancillary chunks. */
function png(width: number, height: number, rows: Buffer, extra: Buffer[] = []): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 0, 0, 0, 0], 8);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', ihdr),
    ...extra,
    pngChunk('IDAT', deflateSync(rows)),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

function pngChunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([len, body, crc]);
}

/** A baseline JPEG header (SOI, SOF0) that declares a size and carries no image data. */
function jpegClaiming(width: number, height: number): Buffer {
  const sof = Buffer.from([0xff, 0xc0, 0, 11, 8, 0, 0, 0, 0, 1, 1, 0x11, 0]);
  sof.writeUInt16BE(height, 5);
  sof.writeUInt16BE(width, 7);
  return Buffer.concat([Buffer.from([0xff, 0xd8]), sof, Buffer.from([0xff, 0xd9])]);
}

describe('images', () => {
  test('decompression bombs and oversized images in `image` -> 4xx naming image', async () => {
    const cases: [string, Buffer][] = [
      // 65535x65535 declared over a few hundred bytes of deflate.
      ['huge declared PNG', png(65535, 65535, Buffer.alloc(65536 * 4))],
      // Within the side limit but the IDAT expands ~1000x (all zeros); truncated after 8 rows.
      ['PNG expanding 1000x', png(4096, 4096, Buffer.alloc(4097 * 8))],
      ['JPEG declaring 65500x65500', jpegClaiming(65500, 65500)],
      ['JPEG declaring 0x0', jpegClaiming(0, 0)],
      ['PNG declaring 0x0', png(0, 0, Buffer.alloc(0))],
      ['random bytes', Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919) % 256))],
    ];
    for (const [what, bytes] of cases) {
      for (const image of [bytes.toString('base64'), `data:image/png;base64,${bytes.toString('base64')}`]) {
        const got = await generate({ prompt: 'x', image });
        assert.ok(
          got.status === 400 || got.status === 413,
          `${what}: ${got.status} ${JSON.stringify(got.body)}`,
        );
        assert.deepEqual(got.fields, ['image'], what);
      }
    }
    // A zTXt chunk that would inflate to 64 MiB: ancillary text is never inflated, so the 16x16
    // image itself is fine.
    const zText = Buffer.concat([
      Buffer.from('Comment\0\0', 'latin1'),
      deflateSync(Buffer.alloc(64 * 2 ** 20)),
    ]);
    const withText = png(16, 16, Buffer.alloc(17 * 16), [pngChunk('zTXt', zText)]);
    expect(await generate({ prompt: 'x', image: withText.toString('base64') }), 202);
    const tooBig = Buffer.alloc(LIMITS.maxInputImageBytes + 1).toString('base64');
    expect(await generate({ prompt: 'x', image: tooBig }), 413, ['image']);
    expect(
      await generate({
        prompt: 'x',
        image: `data:text/html;base64,${Buffer.from('<b>').toString('base64')}`,
      }),
      400,
      ['image'],
    );
    expect(await generate({ prompt: 'x', image: 'data:image/png;base64' }), 400, ['image']);
    expect(await generate({ prompt: 'x', image: '====' }), 400, ['image']);
  });
});

test('no request above left an unhandled error in the logs', () => {
  const errors = h.logs.filter((l) => l['level'] === 'error');
  assert.deepEqual(errors.slice(0, 3), []);
});
