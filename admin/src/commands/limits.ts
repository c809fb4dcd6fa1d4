/** `limits set`, and the limit flags `keys create` shares. */
import { checkLimit, type KeyLimits, type KeyRecord } from '@sd3/shared';
import { type AdminCommand, stringFlag, UsageError, type Values } from '../command.js';
import type { LimitChange } from '../store.js';

export const LIMIT_FLAGS = {
  rpm: { type: 'string' },
  concurrency: { type: 'string' },
} as const;

const FLAG_TO_LIMIT: Record<keyof typeof LIMIT_FLAGS, keyof KeyLimits> = {
  rpm: 'requestsPerMinute',
  concurrency: 'concurrentJobs',
};

/** Parses --rpm / --concurrency: a whole number, or `default` (null) when allowed. */
export function parseLimitFlags(values: Values, allowDefault: boolean): LimitChange {
  const change: LimitChange = {};
  for (const [flag, limit] of Object.entries(FLAG_TO_LIMIT) as [
    keyof typeof LIMIT_FLAGS,
    keyof KeyLimits,
  ][]) {
    const raw = stringFlag(values, flag);
    if (raw === undefined) continue;
    if (raw === 'default' && allowDefault) {
      change[limit] = null;
      continue;
    }
    const n = /^\d+$/.test(raw) ? Number(raw) : Number.NaN;
    const problem = Number.isNaN(n) ? `must be a whole number (got "${raw}")` : checkLimit(limit, n);
    if (problem) throw new UsageError(`--${flag}: ${problem}`);
    change[limit] = n;
  }
  return change;
}

export function limitsText(key: Pick<KeyRecord, 'requestsPerMinute' | 'concurrentJobs'>): string {
  const show = (v: number | undefined) => (v === undefined ? 'default' : String(v));
  return `rpm ${show(key.requestsPerMinute)}, concurrency ${show(key.concurrentJobs)}`;
}

export const limitCommands: AdminCommand[] = [
  {
    name: 'limits set',
    summary: "set a key's requests per minute and concurrent jobs",
    usage: 'limits set KEYID [--rpm N|default] [--concurrency N|default]',
    help: [
      '  --rpm N           requests per minute (every authenticated request counts)',
      '  --concurrency N   queued + running generations at a time',
      "  `default` removes the key's own value, so the deployment default applies",
      '  (SD3_DEFAULT_REQUESTS_PER_MINUTE / SD3_DEFAULT_CONCURRENT_JOBS on the edge).',
      '  Edge instances pick the change up within their key-cache TTL.',
    ].join('\n'),
    options: { ...LIMIT_FLAGS },
    positionals: ['KEYID'],
    prepare(values, [keyId]) {
      const change = parseLimitFlags(values, true);
      if (Object.keys(change).length === 0) throw new UsageError('give --rpm and/or --concurrency');
      return async (store) => {
        const key = await store.setLimits(keyId!, change);
        return {
          text: `key ${key.keyId}: ${limitsText(key)}`,
          json: {
            id: key.keyId,
            requests_per_minute: key.requestsPerMinute ?? null,
            concurrent_jobs: key.concurrentJobs ?? null,
          },
        };
      };
    },
  },
];
