/**
 * The Hono app: routes and the one error mapping, web-standard only (no platform imports), so the
 * same app runs behind the Lambda and the Node server adapters. Every error leaves as RFC 9457
 * problem+json with the request id: ApiError as thrown, unknown paths 404, known paths with
 * another method 405 (with Allow), AWS throttling/5xx/network failures 503 with Retry-After,
 * anything unexpected a logged 500.
 */
import { Hono } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { requestId } from 'hono/request-id';
import { type EdgeDeps, resolveDeps } from './deps.js';
import { ApiError } from './errors/api-error.js';
import { problemResponse } from './errors/problem-response.js';
import { retryAfterSeconds, transientKind } from './errors/transient.js';
import type { AppEnv } from './http/app-env.js';
import { KeyCache } from './http/auth.js';
import { registerPlaygroundRoutes } from './playground/route.js';
import { registerEventRoutes } from './routes/events.js';
import { registerGenerationRoutes } from './routes/generations.js';
import { registerMetaRoutes } from './routes/meta.js';
import { registerOpenAiRoutes } from './routes/openai-images.js';
import { registerQuoteRoutes } from './routes/quote.js';
import { registerUsageRoutes } from './routes/usage.js';
import { registerWebhookRoutes } from './routes/webhooks.js';

function routeMatcher(app: Hono<AppEnv>): (path: string) => string[] {
  const routes = app.routes
    .filter((r) => r.method !== 'ALL')
    .map((r) => ({
      method: r.method,
      regex: new RegExp(
        `^${r.path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/:[A-Za-z_]+/g, '[^/]+')}/?$`,
      ),
    }));
  return (path) => {
    const methods = new Set(routes.filter((r) => r.regex.test(path)).map((r) => r.method));
    if (methods.has('GET')) methods.add('HEAD');
    return [...methods].sort();
  };
}

export function createApp(input: EdgeDeps): Hono<AppEnv> {
  const deps = resolveDeps(input);
  const keyCache = new KeyCache(deps.keys, deps.keyCacheTtlMs, deps.clock, {
    rateLimits: deps.rateLimits,
    defaults: deps.keyLimits,
    lastUsedIntervalMs: deps.tuning.lastUsedIntervalMs,
    logger: deps.logger,
  });
  const app = new Hono<AppEnv>();

  app.use(requestId());
  app.use(async function accessLog(c, next) {
    const start = performance.now();
    await next();
    deps.logger.log(c.res.status >= 500 ? 'error' : 'info', 'request', {
      request_id: c.get('requestId'),
      method: c.req.method,
      path: c.req.path,
      status: c.res.status,
      ms: Math.round((performance.now() - start) * 10) / 10,
      tenant_id: c.get('caller')?.tenantId,
    });
  });

  const context = { deps, keyCache };
  registerQuoteRoutes(app, context);
  registerGenerationRoutes(app, context);
  registerEventRoutes(app, context);
  registerWebhookRoutes(app, context);
  registerOpenAiRoutes(app, context);
  registerUsageRoutes(app, context);
  registerMetaRoutes(app, context);
  registerPlaygroundRoutes(app, context);

  const allowedMethods = routeMatcher(app);

  app.notFound((c) => {
    const allow = allowedMethods(c.req.path);
    const err =
      allow.length > 0
        ? new ApiError('method_not_allowed', `${c.req.method} is not supported on ${c.req.path}`, {
            headers: { allow: allow.join(', ') },
          })
        : new ApiError('not_found', `no route ${c.req.path}`);
    return problemResponse(err, c.req.path, c.get('requestId'));
  });

  app.onError((err, c) => {
    const id = c.get('requestId');
    if (err instanceof ApiError) return problemResponse(err, c.req.path, id);
    if (err instanceof HTTPException && err.status < 500) {
      const code =
        err.status === 413 ? 'payload_too_large' : err.status === 401 ? 'unauthorized' : 'invalid_request';
      return problemResponse(new ApiError(code, err.message || 'bad request'), c.req.path, id);
    }
    // DynamoDB/SQS/S3 throttling, a 5xx or the network, still failing after the SDK's retries:
    // the request may be retried, so 503 + Retry-After rather than a 500.
    const transient = transientKind(err);
    // The job was written before this failed: name it, so the client polls it (never resubmits).
    const accepted = c.get('acceptedJobId');
    const acceptedExt = accepted ? { generation_id: accepted } : undefined;
    if (transient) {
      deps.logger.log('warn', 'dependency unavailable', {
        request_id: id,
        method: c.req.method,
        path: c.req.path,
        kind: transient,
        error: err,
      });
      const seconds = retryAfterSeconds(transient);
      const unavailable = new ApiError(
        'unavailable',
        accepted
          ? `generation ${accepted} was accepted but its state could not be read back; poll it by id in ${seconds} s`
          : transient === 'throttled'
            ? `the service is throttled right now; retry in ${seconds} s`
            : `a backing service is briefly unavailable; retry in ${seconds} s`,
        {
          headers: { 'retry-after': String(seconds) },
          cause: err,
          ...(acceptedExt ? { extensions: acceptedExt } : {}),
        },
      );
      return problemResponse(unavailable, c.req.path, id);
    }
    deps.logger.log('error', 'unhandled error', {
      request_id: id,
      method: c.req.method,
      path: c.req.path,
      error: err,
    });
    const internal = new ApiError(
      'internal',
      `an internal error occurred; quote request id ${id} when reporting it`,
      acceptedExt ? { extensions: acceptedExt } : {},
    );
    return problemResponse(internal, c.req.path, id);
  });

  return app;
}
