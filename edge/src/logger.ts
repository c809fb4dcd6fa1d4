/** JSON-lines logging; every line carries what the caller adds (request id, job id, tenant). */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export interface Logger {
  log(level: LogLevel, msg: string, fields?: Record<string, unknown>): void;
}

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

function errorFields(value: unknown): unknown {
  return value instanceof Error ? { name: value.name, message: value.message, stack: value.stack } : value;
}

export function createJsonLogger(options: { level?: LogLevel; write?: (line: string) => void } = {}): Logger {
  const min = ORDER[options.level ?? 'info'];
  const write = options.write ?? ((line: string) => process.stdout.write(`${line}\n`));
  return {
    log(level, msg, fields = {}) {
      if (ORDER[level] < min) return;
      const entry: Record<string, unknown> = { time: new Date().toISOString(), level, msg };
      for (const [k, v] of Object.entries(fields)) entry[k] = errorFields(v);
      write(JSON.stringify(entry));
    },
  };
}

/** For tests and benchmarks that want no output. */
export const silentLogger: Logger = { log() {} };
