/**
 * A GPU runner as a separate process (`sd3-runner`), as in production: the local stack and the
 * end-to-end tests start, stop and kill it for real.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';

const RUNNER_BIN = fileURLToPath(new URL('../gpu-runner/bin/sd3-runner.js', import.meta.url));

export interface RunnerProcess {
  readonly child: ChildProcess;
  readonly healthUrl: string;
  /** Resolves when /healthz answers 200 (model loaded, polling). */
  ready(timeoutMs?: number): Promise<void>;
  /** SIGTERM and wait for exit; returns the exit code. */
  stop(): Promise<number | null>;
  /** SIGKILL: no cleanup at all, like a crashed instance. */
  kill(): Promise<void>;
  /** Everything the process printed (JSON log lines). */
  output(): string;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export async function startRunnerProcess(
  env: Record<string, string>,
  options: { onLine?: (line: string) => void } = {},
): Promise<RunnerProcess> {
  const port = await freePort();
  const child = spawn(process.execPath, [RUNNER_BIN], {
    env: {
      ...process.env,
      ...env,
      SD3_RUNNER_HEALTH_PORT: String(port),
      SD3_RUNNER_HEALTH_HOST: '127.0.0.1',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const onData = (chunk: Buffer) => {
    const text = chunk.toString('utf8');
    out += text;
    if (options.onLine) for (const line of text.split('\n')) if (line.trim()) options.onLine(line);
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const healthUrl = `http://127.0.0.1:${port}/healthz`;
  return {
    child,
    healthUrl,
    async ready(timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        if (child.exitCode !== null) throw new Error(`runner exited with code ${child.exitCode}:\n${out}`);
        try {
          const res = await fetch(healthUrl);
          if (res.status === 200) return;
        } catch {
          // not listening yet
        }
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(`runner not healthy after ${timeoutMs} ms:\n${out}`);
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill('SIGTERM');
      return exited;
    },
    async kill() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGKILL');
      await exited;
    },
    output: () => out,
  };
}
