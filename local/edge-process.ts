/**
 * The edge (Node HTTP server) and the webhook notifier loop in their own process, so that a
 * benchmark can read the edge's own resident memory apart from the emulators and the load
 * generator. Run as a script, it reads the edge environment from process.env plus:
 *   SD3_EDGE_PORT      port (0 picks a free one), SD3_EDGE_HOST host (default 127.0.0.1)
 *   SD3_EDGE_LOGS      "false" silences the JSON request log
 *   SD3_EDGE_NOTIFIER  "false" leaves the events queue alone (no webhook deliveries)
 *   SD3_EDGE_MEMORY_LOG  a file to append process.memoryUsage() to every 10 s, one JSON line each,
 *                      with the heap left after a full GC (liveHeap; the parent adds --expose-gc):
 *                      the soak benchmark tells a leak from garbage and allocator slack with it
 *   SD3_EDGE_MEMORY_GC  "true" collects garbage before each entry (liveHeap); otherwise no GC is
 *                      forced, so the resident memory measured is what production would see
 * and prints one JSON line `{"ready":true,"url":…}` when it listens. SIGTERM closes it.
 * `startEdgeProcess` is the parent side.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import {
  createAwsDeps,
  createAwsNotifier,
  type EdgeServer,
  silentLogger,
  startEdgeServer,
  startNotifierLoop,
} from '@sd3/edge';
import { NOTIFIER_ENV } from '@sd3/shared';

const SELF = fileURLToPath(import.meta.url);

export const EDGE_PROCESS_ENV = {
  PORT: 'SD3_EDGE_PORT',
  HOST: 'SD3_EDGE_HOST',
  LOGS: 'SD3_EDGE_LOGS',
  NOTIFIER: 'SD3_EDGE_NOTIFIER',
  MEMORY_LOG: 'SD3_EDGE_MEMORY_LOG',
  /** "true": a full GC before each memory-log entry (live heap; it also steadies RSS). */
  MEMORY_GC: 'SD3_EDGE_MEMORY_GC',
} as const;

export interface EdgeProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly url: string;
  /** SIGTERM and wait for exit; returns the exit code. */
  stop(): Promise<number | null>;
  /** Everything the process printed. */
  output(): string;
}

export interface EdgeProcessOptions {
  port?: number;
  logs?: boolean;
  notifier?: boolean;
  onLine?: (line: string) => void;
  /** How long to wait for the ready line (ms). */
  timeoutMs?: number;
}

/** Starts the edge as a child process with `env` (the edge and notifier settings) and waits for it to listen. */
export async function startEdgeProcess(
  env: Record<string, string>,
  options: EdgeProcessOptions = {},
): Promise<EdgeProcess> {
  // With a memory log the edge may collect garbage before each entry, so the log shows the live heap.
  const memoryLog = env[EDGE_PROCESS_ENV.MEMORY_LOG] ?? process.env[EDGE_PROCESS_ENV.MEMORY_LOG];
  const forcedGc =
    memoryLog && (env[EDGE_PROCESS_ENV.MEMORY_GC] ?? process.env[EDGE_PROCESS_ENV.MEMORY_GC]) === 'true';
  const child = spawn(process.execPath, [...(forcedGc ? ['--expose-gc'] : []), '--import', 'tsx', SELF], {
    env: {
      ...process.env,
      ...env,
      [EDGE_PROCESS_ENV.PORT]: String(options.port ?? 0),
      [EDGE_PROCESS_ENV.LOGS]: String(options.logs ?? true),
      [EDGE_PROCESS_ENV.NOTIFIER]: String(options.notifier ?? true),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let pending = '';
  let resolveUrl: (url: string) => void = () => undefined;
  const urlReady = new Promise<string>((resolve) => {
    resolveUrl = resolve;
  });
  const onData = (chunk: Buffer) => {
    const text = chunk.toString('utf8');
    out += text;
    pending += text;
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) {
      if (!line.trim()) continue;
      if (line.startsWith('{"ready":true')) {
        resolveUrl((JSON.parse(line) as { url: string }).url);
        continue;
      }
      options.onLine?.(line);
    }
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const timeoutMs = options.timeoutMs ?? 60_000;
  let timer: NodeJS.Timeout | undefined;
  const url = await Promise.race([
    urlReady,
    exited.then((code) => {
      throw new Error(`edge process exited with code ${code} before listening:\n${out}`);
    }),
    new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`edge process not listening after ${timeoutMs} ms:\n${out}`)),
        timeoutMs,
      );
    }),
  ])
    .catch((err: unknown) => {
      child.kill('SIGKILL');
      throw err;
    })
    .finally(() => clearTimeout(timer));
  return {
    child,
    pid: child.pid!,
    url,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill('SIGTERM');
      return exited;
    },
    output: () => out,
  };
}

async function main(): Promise<void> {
  const env = process.env;
  const port = Number(env[EDGE_PROCESS_ENV.PORT] ?? 0);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(
      `${EDGE_PROCESS_ENV.PORT} must be an integer from 0 to 65535, got "${env[EDGE_PROCESS_ENV.PORT]}"`,
    );
  }
  const quiet = env[EDGE_PROCESS_ENV.LOGS] === 'false';
  const deps = createAwsDeps(env, quiet ? { logger: silentLogger } : {});
  const server: EdgeServer = await startEdgeServer({
    port,
    hostname: env[EDGE_PROCESS_ENV.HOST] ?? '127.0.0.1',
    deps,
  });
  const stops: (() => Promise<void>)[] = [];
  if (env[EDGE_PROCESS_ENV.NOTIFIER] !== 'false') {
    // Local mode lets the notifier post to http://127.0.0.1, as in local/stack.ts.
    const notifier = createAwsNotifier(
      { ...env, [NOTIFIER_ENV.ALLOW_LOCAL_HTTP]: 'true' },
      quiet ? { logger: silentLogger } : {},
    );
    const loop = startNotifierLoop({ sqs: notifier.sqs, queueUrl: notifier.queueUrl, deps: notifier.deps });
    stops.push(async () => {
      await loop.stop();
      notifier.destroy();
    });
  }
  const memoryLog = env[EDGE_PROCESS_ENV.MEMORY_LOG];
  if (memoryLog) {
    const t0 = Date.now();
    const gc = (globalThis as { gc?: () => void }).gc;
    const log = () => {
      const before = process.memoryUsage();
      gc?.();
      const live = gc ? process.memoryUsage().heapUsed : null;
      appendFileSync(
        memoryLog,
        `${JSON.stringify({ atS: (Date.now() - t0) / 1000, ...before, liveHeap: live })}\n`,
      );
    };
    log();
    setInterval(log, 10_000).unref();
  }
  process.stdout.write(`${JSON.stringify({ ready: true, url: server.url, pid: process.pid })}\n`);
  let stopping = false;
  const shutdown = async () => {
    if (stopping) return;
    stopping = true;
    await server.close();
    for (const stop of stops) await stop();
    deps.destroy();
    process.exit(0);
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
  // Orphaned (the parent was killed outright): do not serve on forever.
  const parent = process.ppid;
  setInterval(() => {
    if (process.ppid !== parent) void shutdown();
  }, 1000).unref();
}

if (process.argv[1] && pathToFileURL(process.argv[1]).href === import.meta.url) {
  main().catch((err: unknown) => {
    console.error(`edge process: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  });
}
