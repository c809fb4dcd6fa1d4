/** `usage export`: a tenant's usage ledger for a period, as CSV or JSON (one row per settled job). */
import { formatCredits, type UsageRecord } from '@sd3/shared';
import { type AdminCommand, requiredFlag, stringFlag, UsageError } from '../command.js';

const MAX_RANGE_DAYS = 366;
const DATE = /^\d{4}-\d{2}-\d{2}(T[\d:.]+(Z|[+-]\d{2}:\d{2}))?$/;

function parseDate(flag: string, raw: string): number {
  const ms = DATE.test(raw) ? Date.parse(raw) : Number.NaN;
  if (Number.isNaN(ms)) {
    throw new UsageError(`--${flag}: "${raw}" is not an ISO 8601 date (2026-01-31) or date-time`);
  }
  return ms;
}

const COLUMNS = [
  'ts',
  'job_id',
  'key_id',
  'user',
  'model',
  'status',
  'images',
  'megapixels',
  'steps',
  'quote',
  'charge',
] as const;

function row(r: UsageRecord): Record<(typeof COLUMNS)[number], string | number> {
  return {
    ts: r.ts,
    job_id: r.jobId,
    key_id: r.keyId,
    user: r.user ?? '',
    model: r.model,
    status: r.status,
    images: r.images,
    megapixels: r.megapixels,
    steps: r.steps,
    quote: formatCredits(r.quote),
    charge: formatCredits(r.charge),
  };
}

/** RFC 4180 field: quoted when it holds a comma, quote or line break; a leading =+-@ is defused for spreadsheets. */
function csvField(value: string | number): string {
  let text = String(value);
  if (typeof value === 'string' && /^[=+\-@]/.test(text)) text = `'${text}`;
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

export const usageCommands: AdminCommand[] = [
  {
    name: 'usage export',
    summary: "export a tenant's usage ledger for a period (CSV or JSON)",
    usage: 'usage export --tenant TENANT --from DATE --to DATE [--format csv|json]',
    help: [
      '  --tenant TENANT   the tenant id',
      '  --from DATE       start, inclusive (2026-01-01 or an ISO date-time)',
      `  --to DATE         end, exclusive; at most ${MAX_RANGE_DAYS} days after --from`,
      '  --format F        csv (default) or json; one row per settled generation,',
      '                    amounts in credits (decimal strings)',
    ].join('\n'),
    options: {
      tenant: { type: 'string' },
      from: { type: 'string' },
      to: { type: 'string' },
      format: { type: 'string' },
    },
    positionals: [],
    prepare(values) {
      const tenantId = requiredFlag(values, 'tenant');
      const from = parseDate('from', requiredFlag(values, 'from'));
      const to = parseDate('to', requiredFlag(values, 'to'));
      if (to <= from) throw new UsageError('--to: must be after --from');
      if (to - from > MAX_RANGE_DAYS * 86_400_000) {
        throw new UsageError(`--to: the period may span at most ${MAX_RANGE_DAYS} days`);
      }
      const format = stringFlag(values, 'format') ?? 'csv';
      if (format !== 'csv' && format !== 'json') {
        throw new UsageError(`--format: must be csv or json (got "${format}")`);
      }
      return async (store) => {
        const rows = (await store.usage(tenantId, from, to)).map(row);
        const csv = [
          COLUMNS.join(','),
          ...rows.map((r) => COLUMNS.map((c) => csvField(r[c])).join(',')),
        ].join('\n');
        // --json (the common flag) and --format json both give JSON.
        return { text: format === 'json' ? JSON.stringify(rows, null, 2) : csv, json: rows };
      };
    },
  },
];
