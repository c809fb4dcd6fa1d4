/** The edge as a plain Node HTTP server (local stack, benchmarks). */
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { createApp } from '../app.js';
import type { EdgeDeps } from '../deps.js';

export interface EdgeServer {
  url: string;
  close(): Promise<void>;
}

export function startEdgeServer(options: {
  port?: number;
  hostname?: string;
  deps: EdgeDeps;
}): Promise<EdgeServer> {
  const app = createApp(options.deps);
  const hostname = options.hostname ?? '127.0.0.1';
  return new Promise((resolve) => {
    const server = serve({ fetch: app.fetch, port: options.port ?? 0, hostname }, (info: AddressInfo) => {
      const host = hostname.includes(':') ? `[${hostname}]` : hostname;
      resolve({
        url: `http://${host}:${info.port}`,
        close: () =>
          new Promise<void>((done, fail) => {
            // Open SSE streams would keep close() waiting; end idle and active sockets.
            if ('closeAllConnections' in server) server.closeAllConnections();
            server.close((err) => (err ? fail(err) : done()));
          }),
      });
    });
  });
}
