/**
 * The media bucket's CORS rule for the local stack. In AWS the bucket answers GET and HEAD from
 * any origin with `Access-Control-Allow-Origin: *` (cdk/lib/storage.ts), so a web page (the
 * playground) can fetch a presigned output. fauxqs sends no CORS headers, so the edge's S3
 * endpoint locally is this pass-through proxy, which adds exactly that rule and changes nothing
 * else (presigned signatures cover the path and query, both forwarded untouched).
 */
import { createServer, type IncomingHttpHeaders, request } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface S3CorsProxy {
  /** The S3 endpoint to give the edge (its presigned URLs point here). */
  readonly endpoint: string;
  close(): Promise<void>;
}

const CORS_METHODS = new Set(['GET', 'HEAD']);

function corsHeaders(headers: IncomingHttpHeaders): Record<string, string> {
  if (!headers.origin) return {};
  return {
    'access-control-allow-origin': '*',
    'access-control-allow-methods': 'GET, HEAD',
    'access-control-max-age': '3600',
    ...(headers['access-control-request-headers']
      ? { 'access-control-allow-headers': headers['access-control-request-headers'] }
      : {}),
  };
}

export async function startS3CorsProxy(target: string): Promise<S3CorsProxy> {
  const upstream = new URL(target);
  const sockets = new Set<Socket>();
  const server = createServer((req, res) => {
    const method = req.method ?? 'GET';
    if (method === 'OPTIONS' && req.headers.origin && req.headers['access-control-request-method']) {
      const allowed = CORS_METHODS.has(req.headers['access-control-request-method'].toUpperCase());
      res.writeHead(allowed ? 200 : 403, allowed ? corsHeaders(req.headers) : {});
      res.end();
      return;
    }
    const forward = request(
      {
        host: upstream.hostname,
        port: upstream.port,
        method,
        path: req.url,
        headers: req.headers,
      },
      (up) => {
        const extra = CORS_METHODS.has(method) ? corsHeaders(req.headers) : {};
        res.writeHead(up.statusCode ?? 502, { ...up.headers, ...extra });
        up.pipe(res);
      },
    );
    forward.on('error', (err) => {
      // The emulator is down (a fault test restarts it): answer as an unreachable S3 would.
      if (!res.headersSent) {
        res.writeHead(502, { 'content-type': 'text/plain' });
        res.end(`S3 emulator unreachable: ${err.message}`);
      } else res.destroy(err);
    });
    req.pipe(forward);
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
