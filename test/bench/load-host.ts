/**
 * Child process of the load and soak benchmarks, so the load generator has its process to itself:
 *   `stack`: the emulators in this process, the edge (local/edge-process.ts) and one runner (tiny
 *            model) as its children; a tenant with credits and BENCH_KEYS API keys at high limits.
 *   `bare`:  a bare Hono app on @hono/node-server answering the same paths with small JSON.
 * Prints one JSON line (HostInfo) when ready; SIGTERM stops everything.
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { serve } from '@hono/node-server';
import { KEY_LIMIT_BOUNDS } from '@sd3/shared';
import { Hono } from 'hono';
import { bearerAuth } from 'hono/bearer-auth';
import { AdminStore } from '../../admin/src/store.js';
import { LOCAL_CREDENTIALS, LOCAL_REGION, localClients } from '../../local/resources.js';
import { seedTenantAndKey } from '../../local/seed.js';
import { startLocalStack } from '../../local/stack.js';

export interface HostInfo {
  url: string;
  /** API keys (sk_…) of the one tenant. */
  tokens: string[];
  /** Processes whose resident memory the benchmark samples. */
  pids: { edge: number; runner: number | null; host: number };
  dynamodbEndpoint: string;
  sqsEndpoint: string;
  jobsTable: string;
  jobsQueueUrl: string;
}

const root = fileURLToPath(new URL('../../', import.meta.url));
/** 1,000,000 credits in millicredits: far more than any run spends (tiny jobs cost 1 millicredit). */
const CREDITS_MILLI = 1_000_000_000;

async function hostStack(keys: number): Promise<() => Promise<void>> {
  const stack = await startLocalStack({
    tinyModelDir: join(root, '.tmp', 'bench-models', 'load-tiny'),
    edgeProcess: true,
    edgeLogs: false,
  });
  const { dynamodb } = localClients(stack.emulators);
  const tables = stack.resources.tables;
  const admin = new AdminStore({
    tables: { keys: tables.keys, tenants: tables.tenants, usage: tables.usage },
    region: LOCAL_REGION,
    endpoint: stack.emulators.dynamodbEndpoint,
    credentials: LOCAL_CREDENTIALS,
  });
  const tokens = [stack.apiKey.token];
  const keyIds = [stack.apiKey.keyId];
  for (let i = 1; i < keys; i++) {
    const k = await seedTenantAndKey(dynamodb, tables, { tenantId: stack.apiKey.tenantId });
    tokens.push(k.token);
    keyIds.push(k.keyId);
  }
  // The highest limits a key may have, so the mix is not mostly 429s (those are counted apart).
  for (const keyId of keyIds) {
    await admin.setLimits(keyId, {
      requestsPerMinute: KEY_LIMIT_BOUNDS.requestsPerMinute.max,
      concurrentJobs: KEY_LIMIT_BOUNDS.concurrentJobs.max,
    });
  }
  await admin.addCredits(stack.apiKey.tenantId, CREDITS_MILLI);
  admin.destroy();
  dynamodb.destroy();
  const model = stack.model.id;
  const info: HostInfo = {
    url: stack.url,
    tokens,
    pids: { edge: stack.edgePid, runner: stack.runner?.child.pid ?? null, host: process.pid },
    dynamodbEndpoint: stack.emulators.dynamodbEndpoint,
    sqsEndpoint: stack.emulators.sqsEndpoint,
    jobsTable: tables.jobs,
    jobsQueueUrl: stack.resources.queues[model]!.url,
  };
  process.stdout.write(`${JSON.stringify(info)}\n`);
  return () => stack.stop();
}

/** The baseline: the same paths answered by Hono with no storage, auth by a fixed bearer token. */
async function hostBare(token: string): Promise<() => Promise<void>> {
  const app = new Hono();
  app.use('/v1/*', bearerAuth({ token }));
  app.post('/v1/generations', async (c) => {
    let body: { prompt?: unknown; steps?: unknown; width?: unknown; n?: unknown };
    try {
      body = await c.req.json();
    } catch {
      return c.json({ title: 'Invalid request' }, 400);
    }
    // The same refusals as the edge for the mix's bad bodies, with none of its schema.
    const whole = (v: unknown, min: number, max: number, step = 1) =>
      v === undefined ||
      (Number.isInteger(v) && (v as number) >= min && (v as number) <= max && (v as number) % step === 0);
    if (
      typeof body.prompt !== 'string' ||
      body.prompt === '' ||
      !whole(body.steps, 1, 500) ||
      !whole(body.width, 16, 4096, 16) ||
      !whole(body.n, 1, 10)
    ) {
      return c.json({ title: 'Invalid request' }, 400);
    }
    return c.json({ id: `gen_${crypto.randomUUID().replaceAll('-', '')}`, status: 'queued' }, 202);
  });
  app.get('/v1/generations', (c) => c.json({ object: 'list', data: [], next_cursor: null }));
  app.get('/v1/generations/:id', (c) => {
    const id = c.req.param('id');
    if (!id.startsWith('gen_')) return c.json({ title: 'Not found' }, 404);
    return c.json({ id, status: 'queued' });
  });
  app.get('/v1/models', (c) => c.json({ object: 'list', data: [{ id: 'sd3-tiny', object: 'model' }] }));
  app.get('/v1/usage', (c) => c.json({ object: 'usage', data: [] }));
  app.post('/v1/images/generations', (c) => c.json({ title: 'Invalid request' }, 400));
  const server = await new Promise<ReturnType<typeof serve>>((resolve) => {
    const s = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, (addr) => {
      const info: HostInfo = {
        url: `http://127.0.0.1:${addr.port}`,
        tokens: [token],
        pids: { edge: process.pid, runner: null, host: process.pid },
        dynamodbEndpoint: '',
        sqsEndpoint: '',
        jobsTable: '',
        jobsQueueUrl: '',
      };
      process.stdout.write(`${JSON.stringify(info)}\n`);
      resolve(s);
    });
  });
  return () => new Promise<void>((resolve) => server.close(() => resolve()));
}

const mode = process.argv[2];
let stop: () => Promise<void>;
try {
  if (mode === 'stack') {
    const keys = Number(process.env['BENCH_KEYS'] ?? 8);
    if (!Number.isInteger(keys) || keys < 1 || keys > 100)
      throw new Error(`BENCH_KEYS must be 1..100, got ${keys}`);
    stop = await hostStack(keys);
  } else if (mode === 'bare') {
    const token = process.env['BENCH_TOKEN'];
    if (!token) throw new Error('BENCH_TOKEN is required in bare mode');
    stop = await hostBare(token);
  } else {
    throw new Error(`usage: load-host.ts stack|bare (got ${JSON.stringify(mode)})`);
  }
} catch (err) {
  console.error(`load host: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  process.exit(1);
}
let stopping = false;
const shutdown = () => {
  if (stopping) return;
  stopping = true;
  stop().then(
    () => process.exit(0),
    (err: unknown) => {
      console.error(`load host: stop failed: ${String(err)}`);
      process.exit(1);
    },
  );
};
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
// A benchmark killed outright leaves no stack behind: its children notice they were orphaned.
const parent = process.ppid;
setInterval(() => {
  if (process.ppid !== parent) shutdown();
}, 1000).unref();
