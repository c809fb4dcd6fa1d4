/** Request headers with meaning: Idempotency-Key, Prefer (RFC 7240 wait), Last-Event-ID. */
import { LIMITS } from '@sd3/shared';
import { ApiError } from '../errors/api-error.js';

/** 1-255 printable ASCII characters. */
export function parseIdempotencyKey(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (!/^[\x20-\x7e]{1,255}$/.test(value) || value.trim() === '') {
    throw ApiError.field('Idempotency-Key', 'must be 1 to 255 printable ASCII characters');
  }
  return value;
}

/**
 * The `wait` preference in seconds, or undefined. Other preferences are ignored as RFC 7240
 * allows; a malformed or out-of-range wait is a 400 so a client does not silently get no wait.
 */
export function parsePreferWait(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  let wait: number | undefined;
  for (const part of value.split(',')) {
    const pref = part.split(';', 1)[0]!.trim();
    const eq = pref.indexOf('=');
    const name = (eq < 0 ? pref : pref.slice(0, eq)).trim().toLowerCase();
    if (name !== 'wait') continue;
    const raw =
      eq < 0
        ? ''
        : pref
            .slice(eq + 1)
            .trim()
            .replace(/^"(.*)"$/, '$1');
    if (!/^\d{1,6}$/.test(raw) || Number(raw) > LIMITS.maxWaitSeconds) {
      throw ApiError.field(
        'Prefer',
        `wait must be a whole number of seconds from 0 to ${LIMITS.maxWaitSeconds}`,
      );
    }
    wait = Number(raw);
  }
  return wait;
}

/** The sequence number after which to replay, from `<job id>.<seq>`; -1 when absent. */
export function parseLastEventId(value: string | undefined, jobId: string): number {
  if (value === undefined || value === '') return -1;
  const dot = value.lastIndexOf('.');
  const seq = value.slice(dot + 1);
  if (dot < 0 || value.slice(0, dot) !== jobId || !/^\d{1,9}$/.test(seq)) {
    throw ApiError.field('Last-Event-ID', `must be an event id of this generation (${jobId}.<sequence>)`);
  }
  return Number(seq);
}
