/** The edge as a plain Node HTTP server (local stack, benchmarks). */
import { Server as HttpServer, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { serve } from '@hono/node-server';
import { createApp } from '../app.js';
import type { EdgeDeps } from '../deps.js';
import { ApiError } from '../errors/api-error.js';
import { PROBLEM_CONTENT_TYPE, problemBody } from '../errors/problem-response.js';

/**
 * Bytes Node's HTTP parser refuses never reach the app; Node would answer a bare 400 (431 for
 * oversized headers). This answers the same statuses as problem+json, like every other error.
 */
function answerClientError(err: NodeJS.ErrnoException, socket: Socket): void {
  if (err.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return;
  }
  // Bytes after a request whose answer is under way (a Content-Length lie): let it finish, then close.
  const pending = (socket as { _httpMessage?: ServerResponse | null })._httpMessage;
  if (pending?.headersSent && !pending.writableFinished) {
    pending.once('finish', () => socket.end());
    pending.once('close', () => socket.destroy());
    return;
  }
  const headersTooLarge = err.code === 'HPE_HEADER_OVERFLOW';
  const timedOut = err.code === 'ERR_HTTP_REQUEST_TIMEOUT';
  const detail = headersTooLarge
    ? 'the request headers are larger than the server accepts'
    : timedOut
      ? 'the request was not received in time'
      : `the request is not valid HTTP/1.1 (${err.code ?? 'parse error'})`;
  const problem = { ...problemBody(new ApiError('invalid_request', detail), '', undefined) };
  if (headersTooLarge) Object.assign(problem, { status: 431, title: 'Request header fields too large' });
  if (timedOut) Object.assign(problem, { status: 408, title: 'Request timeout' });
  const body = JSON.stringify(problem);
  const reason = headersTooLarge
    ? 'Request Header Fields Too Large'
    : timedOut
      ? 'Request Timeout'
      : 'Bad Request';
  // Destroyed once written: a request still reading its (broken) body then fails and ends.
  socket.end(
    `HTTP/1.1 ${problem.status} ${reason}\r\ncontent-type: ${PROBLEM_CONTENT_TYPE}\r\n` +
      `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
    () => socket.destroy(),
  );
}

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
  return new Promise((resolve, reject) => {
    const port = options.port ?? 0;
    const server = serve({ fetch: app.fetch, port, hostname }, (info: AddressInfo) => {
      server.off('error', onListenError);
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
    // A busy port is a start-up error the caller reports, not an unhandled 'error' event.
    const onListenError = (err: NodeJS.ErrnoException) => {
      const why =
        err.code === 'EADDRINUSE'
          ? `port ${port} on ${hostname} is already in use (set PORT to another port)`
          : `cannot listen on ${hostname}:${port}: ${err.message}`;
      reject(new Error(why, { cause: err }));
    };
    server.once('error', onListenError);
    if (server instanceof HttpServer) server.on('clientError', answerClientError);
  });
}
