/**
 * GET /v1/generations/{id}/events: Server-Sent Events. Replays the job's recorded events after
 * Last-Event-ID, then re-reads the job every poll interval and sends what is new until a terminal
 * status; a keep-alive comment goes out when nothing was written for a while. Each message has
 * `id` = event id, `event` = type, `data` = the event object (the same shape as webhooks); the
 * latest `generation.preview` also carries the preview image.
 */
import { isTerminal, type JobEvent, type JobRecord, toPublicPreview } from '@sd3/shared';
import type { Hono } from 'hono';
import { streamSSE } from 'hono/streaming';
import type { AppEnv } from '../http/app-env.js';
import { requireKey } from '../http/auth.js';
import { parseLastEventId } from '../http/headers.js';
import { loadJob } from '../services/job-access.js';
import type { RouteContext } from './context.js';

const sequence = (event: JobEvent) => Number(event.id.slice(event.id.lastIndexOf('.') + 1));

/**
 * The stored preview event holds only its step (the item stays small); the job keeps the latest
 * image. A subscriber that sees the latest preview event gets that image with it; replays of older
 * previews carry none, their image is gone.
 */
export function withPreviewImage(event: JobEvent, job: JobRecord): JobEvent {
  if (event.type !== 'generation.preview' || !job.preview || event.data.step !== job.preview.step)
    return event;
  const { image, width, height } = toPublicPreview(job.preview);
  return { ...event, data: { ...event.data, image, width, height } };
}

export function registerEventRoutes(app: Hono<AppEnv>, { deps, keyCache }: RouteContext): void {
  app.get('/v1/generations/:id/events', requireKey(keyCache, 'read'), async (c) => {
    const tenantId = c.get('caller').tenantId;
    // Everything that can fail with a 4xx is checked before the stream starts.
    const first = await loadJob(deps, tenantId, c.req.param('id'));
    const after = parseLastEventId(c.req.header('last-event-id'), first.jobId);
    const requestId = c.get('requestId');
    c.header('cache-control', 'no-cache, no-transform');
    c.header('x-accel-buffering', 'no');
    return streamSSE(
      c,
      async (stream) => {
        const { pollIntervalMs, sseKeepAliveMs, sseMaxDurationMs } = deps.tuning;
        const started = Date.now();
        let lastWrite = started;
        let sent = after;
        let job: JobRecord = first;
        let aborted = false;
        stream.onAbort(() => {
          aborted = true;
        });
        for (;;) {
          const fresh = job.events
            .filter((e) => sequence(e) > sent)
            .sort((a, b) => sequence(a) - sequence(b));
          for (const event of fresh) {
            const data = JSON.stringify(withPreviewImage(event, job));
            await stream.writeSSE({ id: event.id, event: event.type, data });
            sent = sequence(event);
            lastWrite = Date.now();
          }
          if (isTerminal(job.status) || aborted || Date.now() - started >= sseMaxDurationMs) break;
          if (Date.now() - lastWrite >= sseKeepAliveMs) {
            await stream.write(': keep-alive\n\n');
            lastWrite = Date.now();
          }
          await stream.sleep(pollIntervalMs);
          if (aborted) break;
          job = await loadJob(deps, tenantId, first.jobId);
        }
      },
      async (err) => {
        deps.logger.log('error', 'event stream failed', {
          request_id: requestId,
          job_id: first.jobId,
          error: err,
        });
      },
    );
  });
}
