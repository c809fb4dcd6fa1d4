/**
 * Bearer API keys: `sk_<keyId>_<secret>`. The record is found by key id (cached in memory for a
 * short TTL, misses too, so a flood of bad keys does not reach DynamoDB), the secret's SHA-256 is
 * compared in constant time, revoked keys are refused.
 *
 * Scopes: POST routes need `generate`; GET routes need `read` or `generate` (a key that can
 * create jobs can always follow them); `admin` implies both.
 */
import { digestsEqual, hashSecret, type KeyRecord, type KeyScope, parseApiKey } from '@sd3/shared';
import type { MiddlewareHandler } from 'hono';
import type { Clock } from '../deps.js';
import { ApiError } from '../errors/api-error.js';
import type { KeyStore } from '../ports/index.js';
import type { Caller } from '../services/create-job.js';
import type { AppEnv } from './app-env.js';

const MAX_CACHED = 10_000;

export class KeyCache {
  private readonly entries = new Map<string, { record: KeyRecord | null; until: number }>();

  constructor(
    private readonly store: KeyStore,
    private readonly ttlMs: number,
    private readonly clock: Clock,
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
  return { tenantId: record.tenantId, keyId: record.keyId, scopes: record.scopes };
}

export function requireKey(cache: KeyCache, access: Access): MiddlewareHandler<AppEnv> {
  return async function apiKeyAuth(c, next) {
    const caller = await authenticate(cache, c.req.header('authorization'));
    if (!allows(caller.scopes, access)) {
      throw new ApiError(
        'forbidden',
        `this API key lacks the ${access === 'read' ? 'read' : 'generate'} scope`,
      );
    }
    c.set('caller', caller);
    await next();
  };
}
