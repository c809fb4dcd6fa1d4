/**
 * The API on the local stack against a bare Hono app measured in the same run (same machine, same
 * load generator): create-job throughput and latency, authenticated GET throughput, and
 * submit-to-start latency with an idle runner.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serve } from '@hono/node-server';
import autocannon from 'autocannon';
import { Hono } from 'hono';
import { bearerAuth } from 'hono/bearer-auth';
import { startLocalStack } from '../../local/stack.js';

export interface LoadResult {
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  non2xx: number;
}

async function load(options: autocannon.Options): Promise<LoadResult> {
  const result = await autocannon(options);
  return {
    requestsPerSecond: result.requests.average,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    errors: result.errors + result.timeouts,
    non2xx: result.non2xx,
  };
}

/** The baseline: Hono on @hono/node-server doing the same HTTP work with no storage behind it. */
function startBareHono(token: string): Promise<{ url: string; close: () => void }> {
  const app = new Hono();
  app.use('/v1/*', bearerAuth({ token }));
  app.post('/v1/generations', async (c) => {
    const body = await c.req.json<{ prompt?: string }>();
    return c.json({ id: crypto.randomUUID(), status: 'queued', prompt: body.prompt }, 202);
  });
  app.get('/v1/generations/:id', (c) => c.json({ id: c.req.param('id'), status: 'succeeded' }));
  return new Promise((resolve) => {
    const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, (info) => {
      resolve({ url: `http://127.0.0.1:${info.port}`, close: () => server.close() });
    });
  });
}

export interface ApiBenchResult {
  create: LoadResult;
  bareCreate: LoadResult;
  get: LoadResult;
  bareGet: LoadResult;
  submitToStart: { p50Ms: number; p95Ms: number; samples: number };
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

export async function measureApi(seconds = 10): Promise<ApiBenchResult> {
  const dir = await mkdtemp(join(tmpdir(), 'sd3-bench-api-'));
  const stack = await startLocalStack({
    tinyModelDir: join(dir, 'tiny'),
    startRunner: false,
    edgeLogs: false,
  });
  const bare = await startBareHono(stack.apiKey.token);
  try {
    const auth = { authorization: `Bearer ${stack.apiKey.token}`, 'content-type': 'application/json' };
    const body = JSON.stringify({ prompt: 'a lighthouse at dusk', steps: 4 });
    // The GET target is a finished job (the usual poll); a queued one would add the queue-position
    // count, which grows with the backlog the create run leaves behind.
    const probeRunner = await stack.startRunner();
    const probe = await fetch(`${stack.url}/v1/generations`, {
      method: 'POST',
      headers: { ...auth, prefer: 'wait=30' },
      body,
    });
    const { id, status } = (await probe.json()) as { id: string; status: string };
    await probeRunner.stop();
    if (status !== 'succeeded') throw new Error(`probe job ended ${status}`);
    const create = await load({
      url: `${stack.url}/v1/generations`,
      method: 'POST',
      headers: auth,
      body,
      connections: 10,
      duration: seconds,
    });
    const bareCreate = await load({
      url: `${bare.url}/v1/generations`,
      method: 'POST',
      headers: auth,
      body,
      connections: 10,
      duration: seconds,
    });
    const get = await load({
      url: `${stack.url}/v1/generations/${id}`,
      headers: auth,
      connections: 20,
      duration: seconds,
    });
    const bareGet = await load({
      url: `${bare.url}/v1/generations/${id}`,
      headers: auth,
      connections: 20,
      duration: seconds,
    });

    // Submit-to-start with an idle runner: the queue is drained first, then one job at a time.
    const runner = await stack.startRunner({ SD3_RUNNER_WAIT_TIME_SECONDS: '20' });
    const samples: number[] = [];
    try {
      // Let the runner drain the backlog of the throughput runs (fast: mostly tiny jobs).
      for (;;) {
        const list = await fetch(`${stack.url}/v1/generations?status=queued&limit=1`, { headers: auth });
        const page = (await list.json()) as { data: unknown[] };
        if (page.data.length === 0) break;
        await new Promise((r) => setTimeout(r, 500));
      }
      for (let i = 0; i < 30; i++) {
        await new Promise((r) => setTimeout(r, 300)); // the runner is back in its long poll
        const res = await fetch(`${stack.url}/v1/generations`, {
          method: 'POST',
          headers: { ...auth, prefer: 'wait=10' },
          body: JSON.stringify({ prompt: 'latency probe', steps: 1 }),
        });
        const job = (await res.json()) as { created_at: string; started_at: string | null };
        if (job.started_at) samples.push(Date.parse(job.started_at) - Date.parse(job.created_at));
      }
    } finally {
      await runner.stop();
    }
    samples.sort((a, b) => a - b);
    return {
      create,
      bareCreate,
      get,
      bareGet,
      submitToStart: {
        p50Ms: percentile(samples, 50),
        p95Ms: percentile(samples, 95),
        samples: samples.length,
      },
    };
  } finally {
    bare.close();
    await stack.stop();
    await rm(dir, { recursive: true, force: true });
  }
}
