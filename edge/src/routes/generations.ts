/** The native job routes: create, get, list, cancel. */
import { isTerminal, JOB_STATUSES, type JobRecord, LIMITS, nextEvent, terminalCostData } from '@sd3/shared';
import type { Context, Hono } from 'hono';
import { z } from 'zod';
import { ApiError } from '../errors/api-error.js';
import type { AppEnv } from '../http/app-env.js';
import { requireKey } from '../http/auth.js';
import { fieldErrors } from '../http/field-errors.js';
import { parseIdempotencyKey, parsePreferWait } from '../http/headers.js';
import { readJsonBody } from '../http/json-body.js';
import { quoteOf, submitGeneration, validateGenerationRequest } from '../services/create-job.js';
import { decodeCursor, encodeCursor } from '../services/cursor.js';
import { loadJob, settle, waitForTerminal } from '../services/job-access.js';
import { publishJobEvent } from '../services/job-events.js';
import { toPublicJob } from '../services/job-view.js';
import type { RouteContext } from './context.js';

export const ListQuerySchema = z
  .object({
    limit: z.coerce
      .number({ message: 'must be a whole number from 1 to 100' })
      .int({ message: 'must be a whole number from 1 to 100' })
      .min(1, { message: 'must be a whole number from 1 to 100' })
      .max(100, { message: 'must be a whole number from 1 to 100' })
      .optional()
      .describe('Page size, 1-100 (default 20)'),
    cursor: z.string().optional().describe('next_cursor of the previous page'),
    status: z.enum(JOB_STATUSES).optional().describe('Only generations in this status'),
  })
  .meta({ id: 'GenerationListQuery' });

export const jobPath = (id: string) => `/v1/generations/${id}`;

export function registerGenerationRoutes(app: Hono<AppEnv>, { deps, keyCache }: RouteContext): void {
  const respond = async (
    c: Context<AppEnv>,
    record: JobRecord,
    options: { wait: number | undefined; replayed: boolean },
  ) => {
    let current = record;
    if (options.wait !== undefined) {
      current = await waitForTerminal(deps, record, options.wait * 1000, c.req.raw.signal);
      c.header('preference-applied', `wait=${options.wait}`);
      c.header('vary', 'Prefer');
    }
    if (options.replayed) c.header('idempotent-replayed', 'true');
    c.header('location', jobPath(current.jobId));
    return c.json(await toPublicJob(deps, current), isTerminal(current.status) ? 200 : 202);
  };

  app.post('/v1/generations', requireKey(keyCache, 'generate'), async (c) => {
    const idempotencyKey = parseIdempotencyKey(c.req.header('idempotency-key'));
    const wait = parsePreferWait(c.req.header('prefer'));
    const body = await readJsonBody(c.req.raw, LIMITS.maxBodyBytes);
    const validated = validateGenerationRequest(deps, body);
    if (validated.request.dry_run === true) {
      // A quote only: no key reservation, no slot, no credits, no job.
      return c.json(quoteOf(validated), 200);
    }
    const { record, replayed } = await submitGeneration(deps, c.get('caller'), validated, {
      ...(idempotencyKey !== undefined ? { idempotencyKey } : {}),
      rawBody: body,
      requestId: c.get('requestId'),
    });
    c.set('acceptedJobId', record.jobId);
    deps.logger.log('info', replayed ? 'generation replayed' : 'generation queued', {
      request_id: c.get('requestId'),
      job_id: record.jobId,
      tenant_id: record.tenantId,
      model: record.model,
    });
    return respond(c, record, { wait, replayed });
  });

  app.get('/v1/generations', requireKey(keyCache, 'read'), async (c) => {
    const parsed = ListQuerySchema.safeParse(c.req.query());
    if (!parsed.success) throw ApiError.fields(fieldErrors(parsed.error));
    const { limit = 20, cursor, status } = parsed.data;
    const after = cursor === undefined ? undefined : decodeCursor(cursor);
    if (after === null) throw ApiError.field('cursor', 'is not a cursor from a previous page');
    const page = await deps.jobs.listByTenant({
      tenantId: c.get('caller').tenantId,
      limit,
      ...(after ? { after } : {}),
      ...(status ? { status } : {}),
    });
    return c.json({
      object: 'list' as const,
      data: await Promise.all(page.items.map((r) => toPublicJob(deps, r))),
      next_cursor: page.next ? encodeCursor(page.next) : null,
    });
  });

  app.get('/v1/generations/:id', requireKey(keyCache, 'read'), async (c) => {
    const record = await loadJob(deps, c.get('caller').tenantId, c.req.param('id'));
    return c.json(await toPublicJob(deps, record));
  });

  app.post('/v1/generations/:id/cancel', requireKey(keyCache, 'generate'), async (c) => {
    const tenantId = c.get('caller').tenantId;
    const id = c.req.param('id');
    let record = await loadJob(deps, tenantId, id);
    // A lost race (the runner claimed or appended meanwhile) re-reads and decides again.
    for (let attempt = 0; attempt < 5; attempt++) {
      const now = deps.clock.now();
      if (isTerminal(record.status)) {
        throw new ApiError('not_cancelable', `generation ${id} is already ${record.status}`);
      }
      if (record.status === 'queued') {
        const event = nextEvent(
          record,
          'generation.canceled',
          { status: 'canceled', reason: 'canceled while queued', ...terminalCostData(record, 'canceled') },
          now,
        );
        const canceled = await deps.jobs.cancelQueued(record, event, now);
        if (canceled) {
          await publishJobEvent(deps, canceled, event);
          return c.json(await toPublicJob(deps, await settle(deps, canceled)), 200);
        }
      } else {
        const requested = record.cancelRequested ? record : await deps.jobs.requestCancel(id, now);
        // 202: the runner stops between steps and records the cancellation.
        if (requested) return c.json(await toPublicJob(deps, requested), 202);
      }
      record = await loadJob(deps, tenantId, id);
    }
    throw new ApiError('unavailable', `generation ${id} is changing too fast to cancel; try again`, {
      headers: { 'retry-after': '1' },
    });
  });
}
