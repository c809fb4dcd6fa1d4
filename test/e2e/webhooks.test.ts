/**
 * Webhooks end to end: edge -> runner process -> events queue -> the local stack's notifier loop ->
 * a real HTTP receiver. The signature is checked with a verifier written from the Standard Webhooks
 * spec (node:crypto), not with the project's signing code.
 */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { JobEvent } from '@sd3/shared';
import { type LocalStack, startLocalStack } from '../../local/stack.js';
import { ApiClient } from './api-client.js';

let dir: string;
let stack: LocalStack;
let api: ApiClient;
let server: Server;
let hookUrl: string;
const received: { headers: IncomingHttpHeaders; body: string }[] = [];

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sd3-e2e-hooks-'));
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  hookUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/sd3`;
  stack = await startLocalStack({ tinyModelDir: join(dir, 'tiny'), edgeLogs: false });
  api = new ApiClient(stack.url, stack.apiKey.token);
});
after(async () => {
  await stack?.stop();
  await new Promise((r) => server.close(r));
  await rm(dir, { recursive: true, force: true });
});

function verifiesPerSpec(secret: string, headers: IncomingHttpHeaders, body: string): boolean {
  const id = String(headers['webhook-id']);
  const ts = String(headers['webhook-timestamp']);
  const key = Buffer.from(secret.slice('whsec_'.length), 'base64');
  const expected = createHmac('sha256', key).update(`${id}.${ts}.${body}`).digest('base64');
  return (
    Math.abs(Date.now() / 1000 - Number(ts)) < 300 &&
    String(headers['webhook-signature']).split(' ').includes(`v1,${expected}`)
  );
}

test('a finished job is delivered to its webhook exactly once, signed, and logged', async () => {
  const created = await api.create({ prompt: 'a kite', steps: 3, webhook_url: hookUrl });
  assert.equal(created.status, 202);
  const job = await api.waitFor(created.body.id);
  assert.equal(job.status, 'succeeded');
  const deadline = Date.now() + 15_000;
  while (received.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  // Give a duplicate the chance to show up.
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal(received.length, 1, 'exactly one delivery (terminal events only by default)');
  const hit = received[0]!;
  const event = JSON.parse(hit.body) as JobEvent;
  assert.equal(event.type, 'generation.succeeded');
  assert.equal(event.generation_id, job.id);
  assert.equal(hit.headers['webhook-id'], event.id);
  assert.ok(verifiesPerSpec(stack.apiKey.webhookSecret, hit.headers, hit.body), 'valid signature');

  const log = await fetch(`${stack.url}/v1/generations/${job.id}/webhooks`, {
    headers: { authorization: `Bearer ${stack.apiKey.token}` },
  });
  assert.equal(log.status, 200);
  const { data } = (await log.json()) as { data: { event_id: string; state: string; attempts: unknown[] }[] };
  assert.equal(data.length, 1);
  assert.equal(data[0]!.event_id, event.id);
  assert.equal(data[0]!.state, 'delivered');
  assert.equal(data[0]!.attempts.length, 1);
});
