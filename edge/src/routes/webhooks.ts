/**
 * The webhook delivery log of a generation and resending. Tenant-isolated like every job route
 * (another tenant's job answers 404). Resend starts a new round in the log and puts the event on
 * the events queue again, whatever its state (a receiver may have lost a delivered event).
 */
import {
  type DeliveryRecord,
  DeliveryRecordSchema,
  type EventsQueueMessage,
  eventsQueueMessage,
  isTerminal,
  LIMITS,
} from '@sd3/shared';
import type { Hono } from 'hono';
import { z } from 'zod';
import { ApiError } from '../errors/api-error.js';
import type { AppEnv } from '../http/app-env.js';
import { requireKey } from '../http/auth.js';
import { fieldErrors } from '../http/field-errors.js';
import { readOptionalJsonBody } from '../http/json-body.js';
import type { StoredDelivery } from '../notifier/delivery-store.js';
import { loadJob } from '../services/job-access.js';
import type { RouteContext } from './context.js';

export const WebhookDeliveryListSchema = z
  .object({
    object: z.literal('list'),
    webhook_url: z.string().nullable(),
    data: z.array(DeliveryRecordSchema),
  })
  .meta({ id: 'WebhookDeliveryList' });

export const ResendRequestSchema = z
  .strictObject({
    event_id: z
      .string()
      .max(100)
      .optional()
      .describe('An event of this generation; default: its terminal event'),
  })
  .meta({ id: 'WebhookResendRequest' });

function toPublic(d: StoredDelivery): DeliveryRecord {
  return {
    event_id: d.event_id,
    event_type: d.event_type,
    url: d.url,
    state: d.state,
    round: d.round,
    attempts: d.attempts,
    next_attempt_at: d.next_attempt_at,
    delivered_at: d.delivered_at,
  };
}

export function registerWebhookRoutes(app: Hono<AppEnv>, { deps, keyCache }: RouteContext): void {
  const store = () => {
    if (!deps.deliveries) throw new ApiError('unavailable', 'webhook deliveries are not configured here');
    return deps.deliveries;
  };

  app.get('/v1/generations/:id/webhooks', requireKey(keyCache, 'read'), async (c) => {
    const record = await loadJob(deps, c.get('caller').tenantId, c.req.param('id'));
    const deliveries = await store().list(record.jobId);
    return c.json({
      object: 'list' as const,
      webhook_url: record.webhookUrl ?? null,
      data: deliveries.map(toPublic),
    });
  });

  app.post('/v1/generations/:id/webhooks/resend', requireKey(keyCache, 'generate'), async (c) => {
    const record = await loadJob(deps, c.get('caller').tenantId, c.req.param('id'));
    // Read once, with the size limit (an unbounded clone().text() here buffered any body whole).
    const body = (await readOptionalJsonBody(c.req.raw, LIMITS.maxBodyBytes)) ?? {};
    const parsed = ResendRequestSchema.safeParse(body);
    if (!parsed.success) throw ApiError.fields(fieldErrors(parsed.error));
    if (!record.webhookUrl) {
      throw new ApiError('unprocessable', `generation ${record.jobId} has no webhook_url`);
    }
    const wanted = parsed.data.event_id;
    const event =
      wanted !== undefined
        ? record.events.find((e) => e.id === wanted)
        : isTerminal(record.status)
          ? record.events.findLast((e) => e.type === `generation.${record.status}`)
          : undefined;
    if (!event) {
      if (wanted !== undefined) throw ApiError.field('event_id', `is not an event of ${record.jobId}`);
      throw new ApiError('unprocessable', `generation ${record.jobId} has not finished; name an event_id`);
    }
    const delivery = await store().resend(record.jobId, {
      eventId: event.id,
      eventType: event.type,
      url: record.webhookUrl,
    });
    const message: EventsQueueMessage = {
      ...eventsQueueMessage(record, event),
      delivery: { attempt: delivery.attempts.length + 1, due_at: deps.clock.now(), round: delivery.round },
    };
    try {
      await deps.events.publish(message);
    } catch (err) {
      deps.logger.log('error', 'could not enqueue a webhook resend', { job_id: record.jobId, error: err });
      throw new ApiError('unavailable', 'the events queue did not accept the resend; try again', {
        headers: { 'retry-after': '5' },
      });
    }
    return c.json(toPublic(delivery), 202);
  });
}
