/**
 * JSON-lines logs on stdout: one object per line with ts, level, msg and the ids that tie a line to
 * a job (job_id, message_id, request_id, runner_id). Callers pass ids and timings, never message
 * bodies: the envelope signature and the signing keys must not reach a log.
 */

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** A logger that adds `fields` to every line. */
  child(fields: LogFields): Logger;
}

export interface LoggerOptions {
  level?: LogLevel;
  /** Where lines go (default: process.stdout); tests collect them. */
  write?: (line: string) => void;
  fields?: LogFields;
}

/** Field names whose values are never written, whatever a caller passes. */
const REDACTED = new Set(['sig', 'signature', 'body', 'secret', 'signingKeys', 'signing_keys']);

/** Errors become plain objects; AWS SDK errors keep their name and HTTP status. */
export function errorFields(err: unknown): LogFields {
  if (!(err instanceof Error)) return { error: String(err) };
  const out: LogFields = { error: err.message, error_name: err.name };
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string') out['error_code'] = code;
  const status = (err as { $metadata?: { httpStatusCode?: unknown } }).$metadata?.httpStatusCode;
  if (typeof status === 'number') out['http_status'] = status;
  return out;
}

function clean(fields: LogFields): LogFields {
  const out: LogFields = {};
  for (const [k, v] of Object.entries(fields)) {
    if (v === undefined || REDACTED.has(k)) continue;
    out[k] = v instanceof Error ? errorFields(v) : v;
  }
  return out;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const threshold = LOG_LEVELS.indexOf(options.level ?? 'info');
  const write = options.write ?? ((line: string) => process.stdout.write(line));
  const base = clean(options.fields ?? {});
  const emit = (level: LogLevel, msg: string, fields?: LogFields) => {
    if (LOG_LEVELS.indexOf(level) < threshold) return;
    const line = { ts: new Date().toISOString(), level, msg, ...base, ...(fields ? clean(fields) : {}) };
    write(`${JSON.stringify(line)}\n`);
  };
  return {
    debug: (msg, fields) => emit('debug', msg, fields),
    info: (msg, fields) => emit('info', msg, fields),
    warn: (msg, fields) => emit('warn', msg, fields),
    error: (msg, fields) => emit('error', msg, fields),
    child: (fields) => createLogger({ ...options, fields: { ...base, ...clean(fields) } }),
  };
}
