/** /healthz, /v1/models, /openapi.json and /docs. */
import type { Hono } from 'hono';
import type { AppEnv } from '../http/app-env.js';
import { requireKey } from '../http/auth.js';
import { renderDocsPage } from '../openapi/docs-page.js';
import { buildOpenApiDocument } from '../openapi/document.js';
import type { RouteContext } from './context.js';

export function registerMetaRoutes(app: Hono<AppEnv>, { deps, keyCache }: RouteContext): void {
  // Built once, on first use: the schemas do not change while the process lives.
  let openapi: string | undefined;
  let docs: string | undefined;
  const document = () => {
    openapi ??= JSON.stringify(buildOpenApiDocument());
    return openapi;
  };

  app.get('/healthz', (c) => c.json({ status: 'ok' as const }));

  app.get('/v1/models', requireKey(keyCache, 'read'), (c) =>
    c.json({ object: 'list' as const, data: deps.models }),
  );

  app.get('/openapi.json', (c) => c.body(document(), 200, { 'content-type': 'application/json' }));

  app.get('/docs', (c) => {
    docs ??= renderDocsPage(JSON.parse(document()));
    return c.html(docs);
  });
}
