/**
 * Per-key limits: requests per minute (a fixed one-minute window counted in DynamoDB) and
 * concurrent jobs (queued or running). A KeyRecord may set its own; otherwise the deployment's
 * defaults apply. The admin CLI and the edge validate limits with the same bounds.
 */

export interface KeyLimits {
  requestsPerMinute: number;
  concurrentJobs: number;
}

export const DEFAULT_KEY_LIMITS: KeyLimits = { requestsPerMinute: 600, concurrentJobs: 10 };

/** Inclusive bounds of each limit. */
export const KEY_LIMIT_BOUNDS = {
  requestsPerMinute: { min: 1, max: 100_000 },
  concurrentJobs: { min: 1, max: 1_000 },
} as const;

export const RATE_WINDOW_MS = 60_000;

/** Rate-limits table item counting one key's requests in the window starting at windowStart (ms). */
export function rpmWindowItemKey(keyId: string, windowStart: number): string {
  return `rpm#${keyId}#${windowStart}`;
}

/** Rate-limits table item holding one key's queued/running job slots. */
export function jobSlotsItemKey(keyId: string): string {
  return `jobs#${keyId}`;
}

/** The limits in force for a key: its own where set, else the defaults. */
export function effectiveLimits(
  record: { requestsPerMinute?: number; concurrentJobs?: number },
  defaults: KeyLimits,
): KeyLimits {
  return {
    requestsPerMinute: record.requestsPerMinute ?? defaults.requestsPerMinute,
    concurrentJobs: record.concurrentJobs ?? defaults.concurrentJobs,
  };
}

/** Null when valid, else a message naming the limit and its bounds. */
export function checkLimit(name: keyof KeyLimits, value: number): string | null {
  const { min, max } = KEY_LIMIT_BOUNDS[name];
  if (!Number.isInteger(value) || value < min || value > max) {
    return `${name} must be a whole number from ${min} to ${max} (got ${value})`;
  }
  return null;
}
