/**
 * Shared pieces of the hostile-input tests: the edge app over the emulators with a logger that
 * keeps every line, the routes read from the app itself (so a route added later is attacked too),
 * fixture jobs in each terminal state, and the check every answer must pass.
 */
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { Logger } from '@sd3/edge';
import type { Hono } from 'hono';
import type { AwsDeps } from '../../edge/src/adapters/aws/create-aws-deps.js';
import type { AppEnv } from '../../edge/src/http/app-env.js';
import { type EdgeStack, startEdgeStack } from '../../edge/src/test-support/edge-stack.js';

export interface HostileStack {
  stack: EdgeStack;
  app: Hono<AppEnv>;
  /** The app's dependencies (to serve the same app over HTTP). */
  deps: AwsDeps;
  /** Every log line the app wrote, as parsed JSON. */
  logs: Record<string, unknown>[];
  /** Route templates (`/v1/generations/:id`) and their methods, from the app. */
  routes: { method: string; path: string }[];
  /** Jobs of tenant A: succeeded with a webhook_url, canceled; tenant B: succeeded. */
  jobs: { aSucceeded: string; aCanceled: string; bSucceeded: string };
  stop(): Promise<void>;
}

export async function startHostileStack(): Promise<HostileStack> {
  const stack = await startEdgeStack({ tuning: { sseMaxDurationMs: 1000 } });
  const logs: Record<string, unknown>[] = [];
  const logger: Logger = {
    log(level, msg, fields = {}) {
      const entry: Record<string, unknown> = { level, msg };
      for (const [k, v] of Object.entries(fields)) {
        entry[k] = v instanceof Error ? { name: v.name, message: v.message, stack: v.stack } : v;
      }
      // Bounded, so the log itself does not show up as a leak in the memory check.
      if (logs.length < 5000 || level !== 'info') logs.push(entry);
    },
  };
  const { app, deps } = stack.appWith(
    {},
    {
      logger,
      // Thousands of requests a minute from one key, and the jobs they leave queued.
      keyLimits: { requestsPerMinute: 100_000, concurrentJobs: 1000 },
      // The synchronous OpenAI route gives up at once: no runner runs here.
      tuning: { openAiWaitSeconds: 0, pollIntervalMs: 50, sseMaxDurationMs: 1000 },
    },
  );
  const create = async (token: string, body: Record<string, unknown>) => {
    const res = await app.request('/v1/generations', {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    assert.equal(res.status, 202, await res.clone().text());
    return ((await res.json()) as { id: string }).id;
  };
  const aSucceeded = await create(stack.a.token, {
    prompt: 'fixture',
    webhook_url: 'https://hooks.example.com/sd3',
    webhook_events: ['generation.queued', 'generation.succeeded'],
  });
  await stack.runner.succeed(aSucceeded);
  const aCanceled = await create(stack.a.token, { prompt: 'fixture' });
  const canceled = await app.request(`/v1/generations/${aCanceled}/cancel`, {
    method: 'POST',
    headers: { authorization: `Bearer ${stack.a.token}` },
  });
  assert.equal(canceled.status, 200);
  const bSucceeded = await create(stack.b.token, { prompt: 'fixture' });
  await stack.runner.succeed(bSucceeded);
  await stack.runner.receiveAll('tiny');
  const routes = app.routes
    .filter((r) => r.method !== 'ALL')
    .map((r) => ({ method: r.method, path: r.path }))
    .filter((r, i, all) => all.findIndex((o) => o.method === r.method && o.path === r.path) === i);
  return {
    stack,
    app,
    deps,
    logs,
    routes,
    jobs: { aSucceeded, aCanceled, bSucceeded },
    stop: () => stack.stop(),
  };
}

/** Forces a full garbage collection (exposing gc at run time when node was started without it). */
export function forceGc(): void {
  let gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) {
    setFlagsFromString('--expose-gc');
    gc = runInNewContext('gc') as () => void;
  }
  gc();
  gc();
}

export function heapUsedMiB(): number {
  forceGc();
  return Math.round((process.memoryUsage().heapUsed / 2 ** 20) * 10) / 10;
}

export interface Answer {
  status: number;
  contentType: string;
  body: string;
}

/** The problem+json members every error answer carries. */
export function problemIssues(answer: Answer): string[] {
  const issues: string[] = [];
  if (answer.contentType !== 'application/problem+json') {
    issues.push(`content-type ${JSON.stringify(answer.contentType)}, not application/problem+json`);
    return issues;
  }
  let body: unknown;
  try {
    body = JSON.parse(answer.body);
  } catch {
    return [`body is not JSON: ${answer.body.slice(0, 200)}`];
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return ['body is not an object'];
  const p = body as Record<string, unknown>;
  for (const k of ['type', 'title', 'detail'] as const) {
    if (typeof p[k] !== 'string' || p[k] === '') issues.push(`${k} is missing`);
  }
  if (p['status'] !== answer.status) issues.push(`status member ${String(p['status'])} != ${answer.status}`);
  return issues;
}

/**
 * What is wrong with an answer, or [] when it is acceptable: never a 5xx (except the documented
 * 504 of the synchronous OpenAI route, whose job no runner finishes here), problem+json for every
 * 4xx, and parseable JSON for every JSON success.
 */
export function answerIssues(method: string, path: string, answer: Answer): string[] {
  if (answer.status >= 500) {
    if (
      answer.status === 504 &&
      path === '/v1/images/generations' &&
      /"code":"generation_timeout"/.test(answer.body) &&
      /"generation_id":"gen_/.test(answer.body)
    ) {
      return problemIssues(answer);
    }
    return [`status ${answer.status}: ${answer.body.slice(0, 300)}`];
  }
  if (method === 'HEAD') {
    // No body to check; the headers must still say what the GET would have been.
    if (answer.body !== '') return ['HEAD answered with a body'];
    const problem = answer.contentType === 'application/problem+json';
    return answer.status >= 400 && !problem ? [`HEAD ${answer.status} is ${answer.contentType}`] : [];
  }
  if (answer.status >= 400) return problemIssues(answer);
  const type = answer.contentType.split(';', 1)[0]!.trim();
  if (type === 'application/json') {
    try {
      JSON.parse(answer.body);
      return [];
    } catch {
      return [`success body is not JSON: ${answer.body.slice(0, 200)}`];
    }
  }
  if (type === 'text/event-stream' || type === 'text/html') return [];
  return [`unexpected success content-type ${JSON.stringify(answer.contentType)}`];
}

/** Reads an answer whole (SSE streams end on their own: terminal job or the 1 s cap). */
export async function readAnswer(res: Response): Promise<Answer> {
  return {
    status: res.status,
    contentType: res.headers.get('content-type') ?? '',
    body: await res.text(),
  };
}
