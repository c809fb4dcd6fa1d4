/**
 * Bearer API keys: `sk_<keyId>_<secret>`. The record is found by key id (cached in memory for a
 * short TTL, misses too, so a flood of bad keys does not reach DynamoDB; the TTL is how long a
 * revocation may take to apply), the secret's SHA-256 is compared in constant time, revoked keys
 * are refused.
 *
 * Scopes: POST routes need `generate`; GET routes need `read` or `generate` (a key that can
 * create jobs can always follow them); `admin` implies both.
 *
 * Limits: every authenticated request counts against the key's requests-per-minute window in
 * DynamoDB (so the limit holds across edge instances) and every response to it carries
 * `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` (seconds until the window ends).
 * Over the limit → 429 `rate_limited` with `Retry-After`. Last use is recorded at most once per
 * `lastUsedIntervalMs` per key and instance, without delaying the request.
 */
import {
  digestsEqual,
  effectiveLimits,
  hashSecret,
  type KeyLimits,
  type KeyRecord,
  type KeyScope,
  parseApiKey,
  RATE_WINDOW_MS,
} from '@sd3/shared';
import type { MiddlewareHandler } from 'hono';
import type { Clock } from '../deps.js';
import { ApiError } from '../errors/api-error.js';
import type { Logger } from '../logger.js';
import type { KeyStore, RateLimitStore } from '../ports/index.js';
import type { Caller } from '../services/create-job.js';
import type { AppEnv } from './app-env.js';

const MAX_CACHED = 10_000;

export interface KeyGuardOptions {
  rateLimits: RateLimitStore;
  defaults: KeyLimits;
  lastUsedIntervalMs: number;
  logger: Logger;
}

export class KeyCache {
  private readonly entries = new Map<string, { record: KeyRecord | null; until: number }>();
  /** When this instance last wrote (or tried to write) lastUsedAt, per key. */
  private readonly touched = new Map<string, number>();

  constructor(
    private readonly store: KeyStore,
    private readonly ttlMs: number,
    readonly clock: Clock,
    readonly guard?: KeyGuardOptions,
  ) {}

  async get(keyId: string): Promise<KeyRecord | null> {
    const now = this.clock.now();
    const hit = this.entries.get(keyId);
    if (hit && hit.until > now) return hit.record;
    const record = await this.store.get(keyId);
    if (this.ttlMs > 0) {
      if (this.entries.size >= MAX_CACHED) {
        // Maps iterate in insertion order: drop the oldest entry.
        const oldest = this.entries.keys().next();
        if (!oldest.done) this.entries.delete(oldest.value);
      }
      this.entries.delete(keyId);
      this.entries.set(keyId, { record, until: now + this.ttlMs });
    }
    return record;
  }

  /** Records a use of the key, fire-and-forget: at most one write per interval from this instance. */
  noteUse(record: KeyRecord): void {
    if (!this.guard) return;
    const { lastUsedIntervalMs, logger } = this.guard;
    const now = this.clock.now();
    const last = Math.max(record.lastUsedAt ?? 0, this.touched.get(record.keyId) ?? 0);
    if (now - last < lastUsedIntervalMs) return;
    if (this.touched.size >= MAX_CACHED) this.touched.clear();
    this.touched.set(record.keyId, now);
    this.store.touchLastUsed(record.keyId, now, now - lastUsedIntervalMs).catch((err: unknown) => {
      logger.log('warn', 'could not record the last use of an API key', { key_id: record.keyId, error: err });
    });
  }
}

const unauthorized = (detail: string) =>
  new ApiError('unauthorized', detail, { headers: { 'www-authenticate': 'Bearer realm="sd3"' } });

export type Access = 'read' | 'generate';

function allows(scopes: readonly KeyScope[], access: Access): boolean {
  if (scopes.includes('admin') || scopes.includes('generate')) return true;
  return access === 'read' && scopes.includes('read');
}

export async function authenticate(cache: KeyCache, header: string | undefined): Promise<Caller> {
  if (!header) throw unauthorized('send the API key as Authorization: Bearer sk_...');
  const match = /^Bearer[ ]+(\S+)\s*$/i.exec(header);
  const parsed = match ? parseApiKey(match[1]!) : null;
  if (!parsed) throw unauthorized('the Authorization header is not Bearer sk_<key id>_<secret>');
  const record = await cache.get(parsed.keyId);
  // Hash even when the key is unknown, so timing does not tell which key ids exist.
  const digest = await hashSecret(parsed.secret);
  if (!record || !digestsEqual(digest, record.secretHash)) throw unauthorized('the API key is not valid');
  if (record.revokedAt !== undefined) throw unauthorized('the API key was revoked');
  cache.noteUse(record);
  const caller: Caller = { tenantId: record.tenantId, keyId: record.keyId, scopes: record.scopes };
  if (cache.guard) caller.limits = effectiveLimits(record, cache.guard.defaults);
  return caller;
}

/** Counts the request in the key's current window; the RateLimit-* headers for the response. */
async function countRequest(cache: KeyCache, caller: Caller): Promise<Record<string, string>> {
  if (!cache.guard || !caller.limits) return {};
  const now = cache.clock.now();
  const windowStart = Math.floor(now / RATE_WINDOW_MS) * RATE_WINDOW_MS;
  const reset = Math.max(1, Math.ceil((windowStart + RATE_WINDOW_MS - now) / 1000));
  const limit = caller.limits.requestsPerMinute;
  // Windows expire a minute after they end (DynamoDB TTL deletes lazily; only the key matters).
  const expiresAt = Math.ceil((windowStart + 2 * RATE_WINDOW_MS) / 1000);
  const hit = await cache.guard.rateLimits.hit(caller.keyId, windowStart, limit, expiresAt);
  const headers = {
    'ratelimit-limit': String(limit),
    'ratelimit-remaining': String(Math.max(0, limit - hit.count)),
    'ratelimit-reset': String(reset),
  };
  if (!hit.allowed) {
    throw new ApiError(
      'rate_limited',
      `this API key is limited to ${limit} requests per minute; retry in ${reset} s`,
      { headers: { ...headers, 'retry-after': String(reset) } },
    );
  }
  return headers;
}

export function requireKey(cache: KeyCache, access: Access): MiddlewareHandler<AppEnv> {
  return async function apiKeyAuth(c, next) {
    const caller = await authenticate(cache, c.req.header('authorization'));
    const limitHeaders = await countRequest(cache, caller);
    if (!allows(caller.scopes, access)) {
      throw new ApiError(
        'forbidden',
        `this API key lacks the ${access === 'read' ? 'read' : 'generate'} scope`,
        { headers: limitHeaders },
      );
    }
    c.set('caller', caller);
    await next();
    // Set after the handler so error responses (built by onError) carry them too.
    try {
      for (const [name, value] of Object.entries(limitHeaders)) c.res.headers.set(name, value);
    } catch {
      // Immutable headers (a response passed through as is): copy it once.
      const copy = new Response(c.res.body, c.res);
      for (const [name, value] of Object.entries(limitHeaders)) copy.headers.set(name, value);
      c.res = copy;
    }
  };
}
