/**
 * GET /v1/usage: the caller's tenant's usage ledger over [from, to), summed per day (UTC), key or
 * user. Amounts are credits as decimal strings (exact sums of integer millicredits).
 */
import { formatCredits, type UsageRecord } from '@sd3/shared';
import type { Hono } from 'hono';
import { z } from 'zod';
import { ApiError } from '../errors/api-error.js';
import type { AppEnv } from '../http/app-env.js';
import { requireKey } from '../http/auth.js';
import { fieldErrors } from '../http/field-errors.js';
import type { RouteContext } from './context.js';

export const USAGE_MAX_RANGE_DAYS = 366;
const DAY_MS = 86_400_000;

const isoDate = (what: string) =>
  z
    .string()
    .refine(
      (v) => /^\d{4}-\d{2}-\d{2}(T[\d:.]+(Z|[+-]\d{2}:\d{2}))?$/.test(v) && !Number.isNaN(Date.parse(v)),
      {
        message: 'must be an ISO 8601 date (2026-01-31) or date-time (2026-01-31T12:00:00Z)',
      },
    )
    .describe(what);

export const UsageQuerySchema = z
  .object({
    from: isoDate('Start, inclusive'),
    to: isoDate('End, exclusive'),
    group_by: z.enum(['day', 'key', 'user']).optional().describe('Default day'),
  })
  .meta({ id: 'UsageQuery' });

const UsageTotalsSchema = z.object({
  generations: z.number().int(),
  images: z.number().int(),
  megapixels: z.number(),
  steps: z.number().int(),
  charge: z.string().describe('Credits, decimal string'),
});

export const UsageReportSchema = z
  .object({
    object: z.literal('usage'),
    from: z.string(),
    to: z.string(),
    group_by: z.enum(['day', 'key', 'user']),
    currency: z.literal('credits'),
    data: z.array(
      UsageTotalsSchema.extend({
        group: z.string().nullable().describe('The day (YYYY-MM-DD), key id, or user tag (null: none given)'),
      }),
    ),
    total: UsageTotalsSchema,
  })
  .meta({ id: 'UsageReport' });

interface Sum {
  generations: number;
  images: number;
  pixels: number;
  steps: number;
  charge: number;
}

const empty = (): Sum => ({ generations: 0, images: 0, pixels: 0, steps: 0, charge: 0 });

function add(sum: Sum, r: UsageRecord): void {
  sum.generations += 1;
  sum.images += r.images;
  // Megapixels are stored rounded to 4 decimals; summed in 1e-4 MP units to stay exact.
  sum.pixels += Math.round(r.megapixels * 1e4);
  sum.steps += r.steps;
  sum.charge += r.charge;
}

const view = (s: Sum) => ({
  generations: s.generations,
  images: s.images,
  megapixels: s.pixels / 1e4,
  steps: s.steps,
  charge: formatCredits(s.charge),
});

export function registerUsageRoutes(app: Hono<AppEnv>, { deps, keyCache }: RouteContext): void {
  app.get('/v1/usage', requireKey(keyCache, 'read'), async (c) => {
    const usage = deps.usage;
    if (!usage) throw new ApiError('not_found', 'this deployment keeps no usage ledger');
    const parsed = UsageQuerySchema.safeParse(c.req.query());
    if (!parsed.success) throw ApiError.fields(fieldErrors(parsed.error));
    const { group_by: groupBy = 'day' } = parsed.data;
    const from = Date.parse(parsed.data.from);
    const to = Date.parse(parsed.data.to);
    if (to <= from) throw ApiError.field('to', 'must be after from');
    if (to - from > USAGE_MAX_RANGE_DAYS * DAY_MS) {
      throw ApiError.field('to', `the range may span at most ${USAGE_MAX_RANGE_DAYS} days`);
    }
    const records = await usage.query(c.get('caller').tenantId, from, to);
    const groups = new Map<string | null, Sum>();
    const total = empty();
    for (const r of records) {
      const group = groupBy === 'day' ? r.ts.slice(0, 10) : groupBy === 'key' ? r.keyId : (r.user ?? null);
      const sum = groups.get(group) ?? empty();
      groups.set(group, sum);
      add(sum, r);
      add(total, r);
    }
    const data = [...groups.entries()]
      .sort(([a], [b]) => (a ?? '').localeCompare(b ?? ''))
      .map(([group, sum]) => ({ group, ...view(sum) }));
    return c.json({
      object: 'usage' as const,
      from: new Date(from).toISOString(),
      to: new Date(to).toISOString(),
      group_by: groupBy,
      currency: 'credits' as const,
      data,
      total: view(total),
    });
  });
}
