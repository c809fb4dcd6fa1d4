/**
 * Which errors from the AWS SDK (after its own retries) mean "a dependency is briefly unavailable"
 * rather than a bug: throttling, a 5xx from the service, or the network (connection refused or
 * reset, timeouts). The app's onError answers those with 503 + Retry-After instead of a 500, so a
 * client knows to retry. Decided from the error's name, code and $metadata only; the SDK is never
 * imported here.
 */

/** AWS error names that mean "slow down" (DynamoDB, SQS, S3 and the SDK's own throttling list). */
const THROTTLING_NAMES = new Set([
  'ThrottlingException',
  'Throttling',
  'ThrottledException',
  'ProvisionedThroughputExceededException',
  'RequestLimitExceeded',
  'RequestThrottled',
  'RequestThrottledException',
  'TooManyRequestsException',
  'SlowDown',
  'TransactionInProgressException',
  'LimitExceededException',
  'BandwidthLimitExceeded',
  'EC2ThrottledException',
  'PriorRequestNotComplete',
]);

/** Service-side failures that AWS documents as retryable. */
const SERVER_NAMES = new Set([
  'InternalServerError',
  'InternalFailure',
  'InternalError',
  'ServiceUnavailable',
  'ServiceUnavailableException',
  'KMSInternalException',
  'RequestTimeout',
  'RequestTimeoutException',
  'TimeoutError',
]);

/** Node socket errors: the service (or the emulator) is unreachable right now. */
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'ENOTFOUND',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
]);

export type TransientKind = 'throttled' | 'server' | 'network';

interface ErrorShape {
  name?: unknown;
  code?: unknown;
  cause?: unknown;
  errors?: unknown;
  $fault?: unknown;
  $metadata?: { httpStatusCode?: unknown };
}

function classifyOne(e: ErrorShape): TransientKind | null {
  const name = typeof e.name === 'string' ? e.name : '';
  const code = typeof e.code === 'string' ? e.code : '';
  if (THROTTLING_NAMES.has(name) || THROTTLING_NAMES.has(code)) return 'throttled';
  if (NETWORK_CODES.has(code)) return 'network';
  const status = e.$metadata?.httpStatusCode;
  if (typeof status === 'number' && (status === 429 || status === 503)) return 'throttled';
  if (SERVER_NAMES.has(name) || SERVER_NAMES.has(code)) return 'server';
  if (typeof status === 'number' && status >= 500) return 'server';
  // An SDK service exception the service itself blamed on its side.
  if (e.$fault === 'server' && typeof status === 'number') return 'server';
  return null;
}

/** The kind of transient failure behind `err` (its cause chain included), or null. */
export function transientKind(err: unknown): TransientKind | null {
  let current: unknown = err;
  for (let depth = 0; depth < 5 && current !== null && typeof current === 'object'; depth++) {
    const e = current as ErrorShape;
    const kind = classifyOne(e);
    if (kind) return kind;
    // AggregateError (several connection attempts failed): transient if every one was.
    if (Array.isArray(e.errors) && e.errors.length > 0) {
      const kinds = e.errors.map((inner) => transientKind(inner));
      if (kinds.every((k) => k !== null)) return kinds[0]!;
    }
    current = e.cause;
  }
  return null;
}

/** Seconds a client should wait before retrying, per kind. */
export function retryAfterSeconds(kind: TransientKind): number {
  return kind === 'throttled' ? 1 : 2;
}
