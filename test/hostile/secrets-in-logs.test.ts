/**
 * Secrets never leak: a full run of the local stack (edge and notifier in this process, the
 * runner as its own process, the admin CLI, every webhook the receiver got) with every log line of each captured, and every
 * response body and header kept, is scanned for the API key (whole and its secret part), the
 * envelope signing key (base64, base64url, hex), the webhook signing secret (whsec_…, its base64
 * body, its bytes in hex) and AWS credentials by name. The run covers successes, failures (a
 * forged envelope, webhook targets that fail or are refused), cancellation, bad keys and bad input.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient, PutCommand } from '@aws-sdk/lib-dynamodb';
import { newJobId } from '@sd3/edge';
import {
  ENV,
  type Job,
  type JobRecord,
  nextEvent,
  outputPrefix,
  parseApiKey,
  parseSigningKeys,
  serializeEnvelope,
  signEnvelope,
  webhookSecretBytes,
} from '@sd3/shared';
import { localClients } from '../../local/resources.js';
import { type LocalStack, startLocalStack } from '../../local/stack.js';

const ADMIN_BIN = new URL('../../admin/bin/sd3-admin.js', import.meta.url).pathname;

let dir: string;
let stack: LocalStack;
let receiver: Server;
let receiverUrl: string;
/** Everything written to this process's stdout/stderr (edge and notifier JSON logs) and the runner's lines. */
const captured: string[] = [];
/** Every response (status line, headers, body) and every webhook the receiver got. */
const seen: string[] = [];
const restore: (() => void)[] = [];
let runnerLines = 0;

function capture(stream: NodeJS.WriteStream): void {
  const original = stream.write.bind(stream);
  stream.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
    const text = typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
    // JSON log lines are kept here, not echoed into the test report; the rest passes through.
    if (text.startsWith('{"time"')) {
      captured.push(text);
      const callback = rest.find((r) => typeof r === 'function') as (() => void) | undefined;
      callback?.();
      return true;
    }
    captured.push(text);
    return (original as (c: string | Uint8Array, ...r: unknown[]) => boolean)(chunk, ...rest);
  }) as typeof stream.write;
  restore.push(() => {
    stream.write = original as typeof stream.write;
  });
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sd3-secrets-'));
  receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => {
      body += d.toString('utf8');
    });
    req.on('end', () => {
      seen.push(`webhook ${req.url} ${JSON.stringify(req.headers)} ${body}`);
      // The /fail target always fails, so the notifier logs failed attempts and retries.
      res.statusCode = req.url === '/fail' ? 500 : 204;
      res.end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
  capture(process.stdout);
  capture(process.stderr);
  stack = await startLocalStack({
    tinyModelDir: join(dir, 'tiny'),
    onRunnerLine: (line) => {
      captured.push(line);
      runnerLines += 1;
    },
    webhookRetryScheduleMs: [50, 50],
  });
});

after(async () => {
  await stack?.stop();
  for (const r of restore) r();
  await new Promise<void>((resolve) => receiver.close(() => resolve()));
  await rm(dir, { recursive: true, force: true });
});

async function call(
  method: string,
  path: string,
  o: { token?: string | null; body?: unknown; headers?: Record<string, string> } = {},
) {
  const headers: Record<string, string> = { ...o.headers };
  const token = o.token === undefined ? stack.apiKey.token : o.token;
  if (token !== null) headers['authorization'] = `Bearer ${token}`;
  if (o.body !== undefined) headers['content-type'] ??= 'application/json';
  const res = await fetch(`${stack.url}${path}`, {
    method,
    headers,
    ...(o.body !== undefined ? { body: typeof o.body === 'string' ? o.body : JSON.stringify(o.body) } : {}),
  });
  const text = await res.text();
  seen.push(`${res.status} ${method} ${path} ${JSON.stringify([...res.headers])} ${text}`);
  return { status: res.status, text };
}

async function waitFor(id: string, done: (j: Job) => boolean, timeoutMs = 60_000): Promise<Job> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const job = JSON.parse((await call('GET', `/v1/generations/${id}`)).text) as Job;
    if (done(job)) return job;
    if (Date.now() > deadline) throw new Error(`job ${id} still ${job.status}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
const terminal = (j: Job) => ['succeeded', 'failed', 'canceled'].includes(j.status);

function admin(args: string[]): Promise<string> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [ADMIN_BIN, ...args],
      { env: { PATH: process.env['PATH'] ?? '', ...stack.runnerEnv } },
      (_err, stdout, stderr) => resolve(`${stdout}\n${stderr}`),
    );
  });
}

/** Each secret in every form it could be written in, with a name for the failure message. */
function secretForms(): [string, string][] {
  const forms: [string, string][] = [];
  const token = stack.apiKey.token;
  const parsed = parseApiKey(token);
  assert.ok(parsed);
  forms.push(['API key', token], ['API key secret', parsed.secret]);
  for (const [kid, bytes] of parseSigningKeys(stack.runnerEnv[ENV.SIGNING_KEYS]!)) {
    const b = Buffer.from(bytes);
    forms.push(
      [`signing key ${kid} (base64)`, b.toString('base64')],
      [`signing key ${kid} (base64url)`, b.toString('base64url')],
      [`signing key ${kid} (hex)`, b.toString('hex')],
    );
  }
  const whsec = stack.apiKey.webhookSecret;
  const whBytes = Buffer.from(webhookSecretBytes(whsec));
  forms.push(
    ['webhook secret', whsec],
    ['webhook secret (base64 body)', whsec.slice('whsec_'.length).replace(/=+$/, '')],
    ['webhook secret (hex)', whBytes.toString('hex')],
    ['webhook secret (base64url)', whBytes.toString('base64url')],
  );
  return forms;
}

test('a full run with failures and bad input writes no secret to any log or response', async (t) => {
  const token = stack.apiKey.token;
  const parsed = parseApiKey(token)!;
  // Success with webhooks to a receiver that accepts, and one that always fails.
  const ok = JSON.parse(
    (
      await call('POST', '/v1/generations', {
        body: {
          prompt: 'a lighthouse',
          steps: 2,
          webhook_url: `${receiverUrl}/ok`,
          webhook_events: ['generation.queued', 'generation.succeeded'],
        },
        headers: { 'idempotency-key': 'secrets-1' },
      })
    ).text,
  ) as Job;
  const failing = JSON.parse(
    (
      await call('POST', '/v1/generations', {
        body: { prompt: 'x', steps: 2, webhook_url: `${receiverUrl}/fail` },
      })
    ).text,
  ) as Job;
  // A target the SSRF check refuses (plain http to a public name is not allowed locally).
  const refused = JSON.parse(
    (
      await call('POST', '/v1/generations', {
        body: { prompt: 'x', steps: 2, webhook_url: 'http://hooks.example.com/x' },
      })
    ).text,
  ) as Job;
  const waitFor200 = await call('POST', '/v1/generations', {
    body: { prompt: 'waited', steps: 2 },
    headers: { prefer: 'wait=30' },
  });
  assert.ok(waitFor200.status === 200 || waitFor200.status === 202, waitFor200.text);
  const openAi = await call('POST', '/v1/images/generations', {
    body: { prompt: 'openai', size: '64x64', response_format: 'b64_json' },
  });
  assert.ok(openAi.status === 200 || openAi.status === 504, openAi.text);
  for (const id of [ok.id, failing.id, refused.id])
    assert.equal((await waitFor(id, terminal)).status, 'succeeded');

  // A failure in the runner: a job whose envelope is signed with a key the runner does not hold.
  const { dynamodb, sqs } = localClients(stack.emulators);
  try {
    const doc = DynamoDBDocumentClient.from(dynamodb, { marshallOptions: { removeUndefinedValues: true } });
    const now = Date.now();
    const jobId = newJobId(now);
    const params = {
      prompt: 'forged',
      negative_prompt: '',
      width: 64,
      height: 64,
      steps: 2,
      guidance_scale: 7,
      seed: 1,
      n: 1,
      output_format: 'png' as const,
      output_quality: 90,
      strength: null,
      output_ttl_seconds: 3600,
    };
    const record: JobRecord = {
      jobId,
      tenantId: stack.apiKey.tenantId,
      keyId: parsed.keyId,
      model: stack.model.id,
      status: 'queued',
      createdAt: now,
      updatedAt: now,
      params,
      events: [nextEvent({ jobId, events: [] }, 'generation.queued', {}, now)],
      queuedModel: stack.model.id,
      enqueuedAt: now,
      expiresAt: Math.floor(now / 1000) + 3600,
      webhookUrl: `${receiverUrl}/ok`,
    };
    await doc.send(new PutCommand({ TableName: stack.resources.tables.jobs, Item: record }));
    const forged = await signEnvelope(
      {
        v: 1,
        jobId,
        tenantId: record.tenantId,
        model: record.model,
        params,
        inputs: {},
        outputPrefix: outputPrefix(record.tenantId, jobId),
        issuedAt: now,
        expiresAt: now + 600_000,
        kid: 'local-1',
      },
      randomBytes(32),
    );
    await sqs.send(
      new SendMessageCommand({
        QueueUrl: stack.runnerEnv[ENV.JOB_QUEUE_URL]!,
        MessageBody: serializeEnvelope(forged),
      }),
    );
    assert.equal((await waitFor(jobId, terminal)).status, 'failed');
    // A message that is not an envelope at all.
    await sqs.send(
      new SendMessageCommand({
        QueueUrl: stack.runnerEnv[ENV.JOB_QUEUE_URL]!,
        MessageBody: '{"not":"an envelope"',
      }),
    );
  } finally {
    sqs.destroy();
    dynamodb.destroy();
  }

  // Cancel while queued (a long job first keeps the runner busy), resend a webhook, replay.
  const long = JSON.parse(
    (await call('POST', '/v1/generations', { body: { prompt: 'long', steps: 60 } })).text,
  ) as Job;
  const queued = JSON.parse(
    (await call('POST', '/v1/generations', { body: { prompt: 'queued', steps: 2 } })).text,
  ) as Job;
  await call('POST', `/v1/generations/${queued.id}/cancel`);
  await call('POST', `/v1/generations/${long.id}/cancel`);
  await call('POST', `/v1/generations/${ok.id}/webhooks/resend`, { body: {} });
  await call('GET', `/v1/generations/${ok.id}/webhooks`);
  await call('GET', `/v1/generations/${ok.id}/events`);
  await call('POST', '/v1/generations', {
    body: { prompt: 'a different body' },
    headers: { 'idempotency-key': 'secrets-1' },
  });

  // Bad keys: the right id with a wrong secret, the secret alone, other schemes, junk.
  const wrongSecret = `sk_${parsed.keyId}_${'Z'.repeat(parsed.secret.length)}`;
  for (const bad of [
    wrongSecret,
    `${token}x`,
    parsed.secret,
    `sk_${parsed.keyId}_${parsed.secret.slice(0, 10)}`,
  ]) {
    assert.equal((await call('GET', '/v1/models', { token: bad })).status, 401);
  }
  for (const header of [
    `Basic ${Buffer.from(`${parsed.keyId}:${token}`).toString('base64')}`,
    `Token ${token}`,
    token,
    `Bearer ${token} ${token}`,
  ]) {
    assert.equal(
      (await call('GET', '/v1/models', { token: null, headers: { authorization: header } })).status,
      401,
    );
  }
  // Bad input that echoes fields back: none of them may carry the key the client also sent.
  await call('POST', '/v1/generations', { body: { prompt: 5, webhook_url: 'ftp://x', n: 99 } });
  await call('POST', '/v1/generations', {
    body: '{"prompt":',
    headers: { 'content-type': 'application/json' },
  });
  await call('POST', '/v1/generations', { body: { prompt: 'x' }, headers: { 'content-type': 'text/plain' } });
  await call('GET', '/v1/generations?cursor=bm90LWEtY3Vyc29y&limit=0');
  await call('GET', '/v1/usage?from=2026-01-01&to=2025-01-01');
  await call('GET', '/v1/usage?from=2026-01-01&to=2026-02-01');
  await call('DELETE', '/v1/generations');
  await call('GET', '/v1/generations/gen_nope');

  // The operator's CLI: listing keys and usage never prints a key secret.
  seen.push(await admin(['keys', 'list', '--tenant', stack.apiKey.tenantId, '--json']));
  seen.push(await admin(['tenants', 'list']));

  // The failing webhook has run out of retries, and every runner line has arrived.
  await new Promise((r) => setTimeout(r, 1500));
  const deliveries = JSON.parse((await call('GET', `/v1/generations/${failing.id}/webhooks`)).text) as {
    data: { state: string }[];
  };
  assert.ok(deliveries.data.length > 0, 'the failing target was tried');

  const logs = captured.join('\n');
  const responses = seen.join('\n');
  // The run did log: edge requests, notifier attempts and runner jobs.
  assert.match(logs, /"msg":"request"/, 'edge access log');
  // The webhooks went out, and the notifier logged its attempts (the failing ones included).
  assert.match(logs, /"msg":"webhook attempt /, 'notifier log');
  assert.match(responses, /webhook \/fail /);
  assert.match(responses, /webhook \/ok /);
  assert.ok(runnerLines > 5, `runner lines: ${runnerLines}`);
  t.diagnostic(
    `${captured.length} log lines (${runnerLines} from the runner), ${seen.length} responses and webhooks scanned`,
  );
  const leaks: string[] = [];
  for (const [name, value] of secretForms()) {
    assert.ok(value.length >= 16, `${name} is long enough to search for`);
    if (logs.includes(value)) leaks.push(`${name} in the logs`);
    if (responses.includes(value)) leaks.push(`${name} in a response or webhook`);
  }
  for (const name of ['AWS_SECRET_ACCESS_KEY', 'secretAccessKey', 'AWS_SESSION_TOKEN', 'sessionToken']) {
    if (logs.includes(name) || responses.includes(name)) leaks.push(`${name} (AWS credentials) written out`);
  }
  assert.deepEqual(leaks, []);
});
