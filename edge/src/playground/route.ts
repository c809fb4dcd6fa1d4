/**
 * GET / (the playground page) and GET /playground/{file} (its script and stylesheet). Everything is
 * in memory (string modules), so the Lambda bundle reads no files. The assets are addressed by a
 * hash of their content and cached for a year; the page is revalidated on every visit. The
 * Content-Security-Policy allows scripts and styles from this origin only, images and fetches from
 * this origin and the media bucket's origin (presigned outputs), and nothing else.
 */
import type { Hono } from 'hono';
import { ApiError } from '../errors/api-error.js';
import type { AppEnv } from '../http/app-env.js';
import type { RouteContext } from '../routes/context.js';
import { PLAYGROUND_JS } from './client.js';
import { renderPlaygroundPage } from './page.js';
import { PLAYGROUND_CSS } from './style.js';

interface Asset {
  body: string;
  contentType: string;
}

const ASSETS: Record<string, Asset> = {
  'app.js': { body: PLAYGROUND_JS, contentType: 'text/javascript; charset=utf-8' },
  'app.css': { body: PLAYGROUND_CSS, contentType: 'text/css; charset=utf-8' },
};

const IMMUTABLE = 'public, max-age=31536000, immutable';

async function shortHash(text: string): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest).slice(0, 8), (b) => b.toString(16).padStart(2, '0')).join('');
}

/** The CSP of the page; `mediaOrigin` is where presigned output URLs point (absent: same origin only). */
export function playgroundCsp(mediaOrigin: string | undefined): string {
  const media = mediaOrigin ? ` ${mediaOrigin}` : '';
  return [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    `img-src 'self' data: blob:${media}`,
    `connect-src 'self'${media}`,
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}

const SECURITY_HEADERS = {
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
};

export function registerPlaygroundRoutes(app: Hono<AppEnv>, { deps }: RouteContext): void {
  // Built on first use: the hashes and the bucket origin do not change while the process lives.
  let page: Promise<{ html: string; etag: string; csp: string }> | undefined;
  let hashes: Promise<Record<string, string>> | undefined;
  const assetHashes = () => {
    hashes ??= Promise.all(
      Object.entries(ASSETS).map(async ([name, asset]) => [name, await shortHash(asset.body)] as const),
    ).then(Object.fromEntries);
    return hashes;
  };
  const build = async () => {
    const { 'app.js': js, 'app.css': css } = await assetHashes();
    const html = renderPlaygroundPage({
      script: `/playground/app.js?v=${js}`,
      style: `/playground/app.css?v=${css}`,
    });
    // Presigning is a local computation (no request); its origin is the bucket's public origin.
    let mediaOrigin: string | undefined;
    try {
      mediaOrigin = new URL(await deps.objects.presignGet('playground/origin-probe', 60)).origin;
    } catch (err) {
      deps.logger.log('warn', 'playground: could not find the media origin; images may be blocked', {
        error: err,
      });
    }
    return { html, etag: `"${await shortHash(html)}"`, csp: playgroundCsp(mediaOrigin) };
  };

  app.get('/', async (c) => {
    page ??= build().catch((err: unknown) => {
      page = undefined;
      throw err;
    });
    const { html, etag, csp } = await page;
    const headers = {
      ...SECURITY_HEADERS,
      'content-security-policy': csp,
      'cache-control': 'no-cache',
      etag,
    };
    if (c.req.header('if-none-match') === etag) return c.body(null, 304, headers);
    return c.html(html, 200, headers);
  });

  app.get('/playground/:file', async (c) => {
    const name = c.req.param('file');
    const asset = Object.hasOwn(ASSETS, name) ? ASSETS[name] : undefined;
    if (!asset) throw new ApiError('not_found', `no playground file ${name.slice(0, 100)}`);
    const current = (await assetHashes())[name];
    return c.body(asset.body, 200, {
      ...SECURITY_HEADERS,
      'content-type': asset.contentType,
      // Only the URL with the current hash is cached for good; the page always asks for that one.
      'cache-control': c.req.query('v') === current ? IMMUTABLE : 'no-cache',
    });
  });
}
