/** `keys create` (the secret is printed once), `keys list` (never secrets), `keys revoke`. */
import { generateApiKey, hashSecret, KEY_SCOPES, type KeyRecord, type KeyScope } from '@sd3/shared';
import { type AdminCommand, iso, requiredFlag, stringFlag, table, UsageError } from '../command.js';
import { LIMIT_FLAGS, limitsText, parseLimitFlags } from './limits.js';

/** What may be shown of a key: never its hash. */
function view(k: KeyRecord) {
  return {
    id: k.keyId,
    tenant_id: k.tenantId,
    name: k.name,
    scopes: k.scopes,
    created_at: iso(k.createdAt),
    last_used_at: k.lastUsedAt === undefined ? null : iso(k.lastUsedAt),
    revoked_at: k.revokedAt === undefined ? null : iso(k.revokedAt),
    requests_per_minute: k.requestsPerMinute ?? null,
    concurrent_jobs: k.concurrentJobs ?? null,
  };
}

function parseScopes(raw: string | undefined): KeyScope[] {
  if (raw === undefined) return ['generate', 'read'];
  const scopes = raw.split(',').map((s) => s.trim());
  for (const s of scopes) {
    if (!(KEY_SCOPES as readonly string[]).includes(s)) {
      throw new UsageError(`--scopes: unknown scope "${s}" (use ${KEY_SCOPES.join(', ')})`);
    }
  }
  return [...new Set(scopes)] as KeyScope[];
}

export const keyCommands: AdminCommand[] = [
  {
    name: 'keys create',
    summary: 'create an API key for a tenant (the secret is shown once)',
    usage: 'keys create --tenant ID [--name NAME] [--scopes generate,read] [--rpm N] [--concurrency N]',
    help: [
      '  --tenant ID       the tenant (required; must exist)',
      '  --name NAME       a label (default "api key")',
      `  --scopes LIST     comma-separated, of ${KEY_SCOPES.join(', ')} (default generate,read)`,
      '  --rpm N           requests per minute (default: the deployment default)',
      '  --concurrency N   queued + running generations at a time (default: the deployment default)',
      'Only a hash of the secret is stored: copy the printed key now.',
    ].join('\n'),
    options: {
      tenant: { type: 'string' },
      name: { type: 'string' },
      scopes: { type: 'string' },
      ...LIMIT_FLAGS,
    },
    positionals: [],
    prepare(values) {
      const tenantId = requiredFlag(values, 'tenant');
      const name = stringFlag(values, 'name') ?? 'api key';
      if (name.length === 0 || name.length > 200) throw new UsageError('--name must be 1-200 characters');
      const scopes = parseScopes(stringFlag(values, 'scopes'));
      const limits = parseLimitFlags(values, false);
      return async (store, now) => {
        const { token, keyId, secret } = generateApiKey();
        const record: KeyRecord = {
          keyId,
          tenantId,
          secretHash: await hashSecret(secret),
          scopes,
          name,
          createdAt: now,
          ...(typeof limits.requestsPerMinute === 'number'
            ? { requestsPerMinute: limits.requestsPerMinute }
            : {}),
          ...(typeof limits.concurrentJobs === 'number' ? { concurrentJobs: limits.concurrentJobs } : {}),
        };
        await store.createKey(record);
        return {
          text: [
            `created key ${keyId} for tenant ${tenantId} (scopes ${scopes.join(',')}; ${limitsText(record)})`,
            '',
            `  ${token}`,
            '',
            'This is the only time the key is shown; store it now.',
          ].join('\n'),
          json: { ...view(record), key: token },
        };
      };
    },
  },
  {
    name: 'keys list',
    summary: "list a tenant's keys (never their secrets)",
    usage: 'keys list --tenant ID',
    help: '  --tenant ID   the tenant (required)',
    options: { tenant: { type: 'string' } },
    positionals: [],
    prepare(values) {
      const tenantId = requiredFlag(values, 'tenant');
      return async (store) => {
        const keys = (await store.listKeys(tenantId)).map(view);
        return {
          text: table(
            ['ID', 'NAME', 'SCOPES', 'RPM', 'CONCURRENCY', 'LAST USED', 'REVOKED'],
            keys.map((k) => [
              k.id,
              k.name,
              k.scopes.join(','),
              k.requests_per_minute === null ? 'default' : String(k.requests_per_minute),
              k.concurrent_jobs === null ? 'default' : String(k.concurrent_jobs),
              k.last_used_at ?? '-',
              k.revoked_at ?? '-',
            ]),
          ),
          json: keys,
        };
      };
    },
  },
  {
    name: 'keys revoke',
    summary: 'revoke a key (refused by every edge within its key-cache TTL)',
    usage: 'keys revoke KEYID',
    help: '  KEYID   the key id (the part after sk_, 12 characters)',
    options: {},
    positionals: ['KEYID'],
    prepare(_values, [keyId]) {
      if (!/^[a-z0-9]{12}$/.test(keyId!)) {
        throw new UsageError(`"${keyId}" is not a key id (12 lowercase letters or digits)`);
      }
      return async (store, now) => {
        const key = await store.revokeKey(keyId!, now);
        return { text: `revoked key ${key.keyId} at ${iso(key.revokedAt)}`, json: view(key) };
      };
    },
  },
];
