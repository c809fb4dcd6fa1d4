/**
 * POST /v1/generations/quote: the price of a request, validated exactly as POST /v1/generations
 * (same 400/422 answers) but nothing is created, reserved or queued. With billing on, the
 * tenant's spending room is added from one read, so a client can say "you can afford it" first.
 */
import { formatCredits, LIMITS, type Quote } from '@sd3/shared';
import type { Hono } from 'hono';
import type { AppEnv } from '../http/app-env.js';
import { requireKey } from '../http/auth.js';
import { readJsonBody } from '../http/json-body.js';
import { quoteOf, validateGenerationRequest } from '../services/create-job.js';
import { decodeInputImage } from '../services/input-image.js';
import type { RouteContext } from './context.js';

export function registerQuoteRoutes(app: Hono<AppEnv>, { deps, keyCache }: RouteContext): void {
  // `read` is enough: a quote changes nothing, and the prices are public to the key on /v1/models.
  app.post('/v1/generations/quote', requireKey(keyCache, 'read'), async (c) => {
    const body = await readJsonBody(c.req.raw, LIMITS.maxBodyBytes);
    const validated = validateGenerationRequest(deps, body);
    // The image is checked as create checks it, so a bad one is found before running.
    if (validated.request.image !== undefined) await decodeInputImage(validated.request.image);
    const quote: Quote = quoteOf(validated);
    if (deps.billing) {
      const room = await deps.billing.room(c.get('caller').tenantId, deps.clock.now());
      quote.balance = room.balance === undefined ? null : formatCredits(room.balance);
      quote.monthly_spend_left =
        room.monthlySpendLeft === undefined ? null : formatCredits(room.monthlySpendLeft);
    }
    c.header('cache-control', 'no-store');
    return c.json(quote, 200);
  });
}
