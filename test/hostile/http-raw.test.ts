/**
 * Hostile bytes over real HTTP: the edge on the Node server adapter, sent raw over a socket, for
 * what `fetch` cannot send: invalid UTF-8 in the request line, raw header bytes, NULs, framing
 * lies (Content-Length, chunked), oversized headers. Whatever answers, the app or Node's parser,
 * answers problem+json and never a 5xx; the server keeps serving and logs no unhandled error.
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, test } from 'node:test';
import { startEdgeServer } from '@sd3/edge';
import { answerIssues, type HostileStack, startHostileStack } from './support.js';

let h: HostileStack;
let server: { url: string; close(): Promise<void> };
let port: number;

before(async () => {
  h = await startHostileStack();
  server = await startEdgeServer({ port: 0, deps: h.deps });
  port = Number(new URL(server.url).port);
});
after(async () => {
  await server.close();
  await h.stop();
});

interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** Every status line in the reply (a pipelined remainder may get its own answer). */
  statuses: number[];
}

/**
 * Writes raw bytes, half-closes when asked, and reads until the server closes or goes quiet;
 * null when nothing came back.
 */
function raw(bytes: Buffer, options: { halfClose?: boolean } = {}): Promise<RawAnswer | null> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    const chunks: Buffer[] = [];
    let quiet: NodeJS.Timeout | undefined;
    const finish = () => {
      clearTimeout(quiet);
      socket.destroy();
      const text = Buffer.concat(chunks).toString('latin1');
      if (text === '') return resolve(null);
      const [head = '', ...rest] = text.split('\r\n\r\n');
      const lines = head.split('\r\n');
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '')?.[1] ?? 0);
      const headers: Record<string, string> = {};
      for (const line of lines.slice(1)) {
        const colon = line.indexOf(':');
        if (colon > 0) headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
      }
      let body = rest.join('\r\n\r\n');
      const length = Number(headers['content-length'] ?? Number.NaN);
      if (Number.isInteger(length)) body = body.slice(0, length);
      const statuses = [...text.matchAll(/HTTP\/1\.[01] (\d{3})/g)].map((m) => Number(m[1]));
      resolve({ status, headers, body, statuses });
    };
    // Every case but a half-closed one ends with the server closing; silence means it waits for
    // bytes that never come (a Content-Length lie), which only a half-close case expects.
    const arm = () => {
      clearTimeout(quiet);
      quiet = setTimeout(finish, options.halfClose ? 3000 : 20_000);
    };
    socket.on('data', (d) => {
      chunks.push(d);
      arm();
    });
    socket.on('end', finish);
    socket.on('error', (err: NodeJS.ErrnoException) => (err.code === 'ECONNRESET' ? finish() : reject(err)));
    socket.on('connect', () => {
      socket.write(bytes);
      if (options.halfClose) socket.end();
      arm();
    });
  });
}

const crlf = (...lines: (string | Buffer)[]) =>
  Buffer.concat(
    lines.map((l) => Buffer.concat([Buffer.isBuffer(l) ? l : Buffer.from(l, 'latin1'), Buffer.from('\r\n')])),
  );

function checkAnswer(what: string, answer: RawAnswer | null, status?: number): RawAnswer {
  assert.ok(answer, `${what}: no answer`);
  const issues = answerIssues('GET', '/', {
    status: answer.status,
    contentType: answer.headers['content-type'] ?? '',
    body: answer.body,
  });
  assert.deepEqual(issues, [], what);
  for (const s of answer.statuses) assert.ok(s > 0 && s < 500, `${what}: a ${s} in ${answer.statuses}`);
  if (status !== undefined) assert.equal(answer.status, status, `${what}: ${answer.body.slice(0, 200)}`);
  return answer;
}

test('raw bytes the app sees: invalid UTF-8 in path, query and body, latin-1 header bytes', async () => {
  const token = h.stack.a.token;
  const auth = `Authorization: Bearer ${token}`;
  const host = 'Host: edge.test';
  const json = 'Content-Type: application/json';
  const cases: [string, Buffer, number][] = [
    [
      'raw 0xFF in the path',
      crlf(
        Buffer.from('GET /v1/generations/\xff\xfe HTTP/1.1', 'latin1'),
        host,
        auth,
        'Connection: close',
        '',
      ),
      400,
    ],
    [
      '%FF in the path',
      crlf('GET /v1/generations/%ff%fe%00 HTTP/1.1', host, auth, 'Connection: close', ''),
      404,
    ],
    [
      '%FF in the query',
      crlf('GET /v1/generations?cursor=%ff%fe&limit=%c0%af HTTP/1.1', host, auth, 'Connection: close', ''),
      400,
    ],
    [
      'latin-1 bytes in Authorization',
      crlf(
        Buffer.from(
          `GET /v1/models HTTP/1.1\r\n${host}\r\nAuthorization: Bearer sk_\xe9\xff\xfe\r\nConnection: close\r\n`,
          'latin1',
        ),
        '',
      ),
      401,
    ],
    [
      'latin-1 bytes in Idempotency-Key',
      crlf(
        'POST /v1/generations HTTP/1.1',
        host,
        auth,
        json,
        Buffer.from('Idempotency-Key: k\xe9\xff', 'latin1'),
        'Content-Length: 14',
        'Connection: close',
        '{"prompt":"x"}',
      ),
      400,
    ],
    [
      'invalid UTF-8 body',
      crlf(
        'POST /v1/generations HTTP/1.1',
        host,
        auth,
        json,
        'Content-Length: 15',
        'Connection: close',
        '',
        Buffer.from('{"prompt":"\xc3\x28"}', 'latin1'),
      ),
      400,
    ],
    [
      'absolute-form target',
      crlf('GET http://evil.example/healthz HTTP/1.1', host, 'Connection: close', ''),
      200,
    ],
    ['HTTP/1.0 without Host', crlf('GET /v1/models HTTP/1.0', ''), 401],
  ];
  for (const [what, bytes, status] of cases) {
    const got = checkAnswer(what, await raw(bytes));
    assert.equal(got.status, status, `${what}: ${got.body.slice(0, 200)}`);
  }
});

test("framing lies and bytes Node's parser refuses -> 400/431 problem+json", async () => {
  const host = 'Host: edge.test';
  const auth = `Authorization: Bearer ${h.stack.a.token}`;
  const json = 'Content-Type: application/json';
  const cases: [string, Buffer][] = [
    ['garbage request line', crlf('FOO BAR', '')],
    ['NUL in a header value', crlf('GET /v1/models HTTP/1.1', host, 'X-Test: a\0b', '')],
    ['header line without a colon', crlf('GET /v1/models HTTP/1.1', host, 'no colon here', '')],
    ['space before the colon', crlf('GET /v1/models HTTP/1.1', host, 'Authorization : Bearer x', '')],
    [
      'two Content-Lengths that differ',
      crlf(
        'POST /v1/generations HTTP/1.1',
        host,
        auth,
        json,
        'Content-Length: 5',
        'Content-Length: 6',
        '',
        '{}',
      ),
    ],
    [
      'Content-Length and chunked',
      crlf(
        'POST /v1/generations HTTP/1.1',
        host,
        auth,
        json,
        'Content-Length: 5',
        'Transfer-Encoding: chunked',
        '',
        '0',
        '',
      ),
    ],
    [
      'negative Content-Length',
      crlf('POST /v1/generations HTTP/1.1', host, auth, json, 'Content-Length: -1', '', '{}'),
    ],
    ['headers over 16 KiB', crlf('GET /v1/models HTTP/1.1', host, `X-Big: ${'a'.repeat(20_000)}`, '')],
    ['bare LF line endings with CR inside', Buffer.from('GET /healthz HTTP/1.1\nHost: a\rb\n\n', 'latin1')],
  ];
  for (const [what, bytes] of cases) {
    const got = checkAnswer(what, await raw(bytes));
    assert.ok(got.status === 400 || got.status === 431, `${what}: ${got.status}`);
  }
  // A Content-Length shorter than the body: the first request gets the short JSON (400), the
  // rest is read as a next request and refused by the parser.
  const short = checkAnswer(
    'Content-Length too small',
    await raw(
      crlf(
        'POST /v1/generations HTTP/1.1',
        host,
        auth,
        json,
        'Content-Length: 5',
        '',
        '{"prompt":"x","dry_run":true}',
      ),
    ),
  );
  assert.equal(short.status, 400);
  // A chunk size that is not hex, after the request reached the app.
  const badChunk = checkAnswer(
    'bad chunk size',
    await raw(
      crlf(
        'POST /v1/generations HTTP/1.1',
        host,
        auth,
        json,
        'Transfer-Encoding: chunked',
        '',
        '5',
        '{"pro',
        'zz',
        'x',
        '0',
        '',
      ),
    ),
  );
  assert.equal(badChunk.status, 400);
});

test('a body cut short (Content-Length larger than sent, then FIN) neither crashes nor logs an error', async () => {
  const host = 'Host: edge.test';
  const auth = `Authorization: Bearer ${h.stack.a.token}`;
  const request = crlf(
    'POST /v1/generations HTTP/1.1',
    host,
    auth,
    'Content-Type: application/json',
    'Content-Length: 100',
    '',
    '{"prompt":',
  );
  const got = await raw(request, { halfClose: true });
  // Either the server answers a client error or it has nobody left to answer.
  if (got) checkAnswer('short body', got);
  const resend = crlf(
    `POST /v1/generations/${h.jobs.aSucceeded}/webhooks/resend HTTP/1.1`,
    host,
    auth,
    'Content-Type: application/json',
    'Content-Length: 100',
    '',
    '{"ev',
  );
  const got2 = await raw(resend, { halfClose: true });
  if (got2) checkAnswer('short resend body', got2);
  const health = await fetch(`${server.url}/healthz`);
  assert.equal(health.status, 200);
  // Give the aborted handlers a moment to finish and log, then look.
  await new Promise((r) => setTimeout(r, 200));
  const errors = h.logs.filter((l) => l['level'] === 'error');
  assert.deepEqual(errors.slice(0, 3), []);
});
