/**
 * The OpenAPI 3.1 document, generated from the zod schemas (the single source): every schema
 * with a meta id becomes a component, routes reference them. JSON Schema 2020-12 is OpenAPI
 * 3.1's dialect, so z.toJSONSchema output is used as is (minus the per-schema $schema/$id).
 */
import { ERROR_CODES, LIMITS, ModelInfoSchema } from '@sd3/shared';
import { z } from 'zod';
import { ListQuerySchema } from '../routes/generations.js';
// Importing the usage routes also registers their UsageReport schema.
import { USAGE_MAX_RANGE_DAYS, UsageQuerySchema } from '../routes/usage.js';
// Registers the webhook schemas (meta ids) in the global registry.
import '../routes/webhooks.js';

export const ModelListSchema = z
  .object({ object: z.literal('list'), data: z.array(ModelInfoSchema) })
  .meta({ id: 'ModelList' });

export const HealthSchema = z.object({ status: z.literal('ok') }).meta({ id: 'Health' });

type Json = Record<string, unknown>;

const ref = (id: string) => ({ $ref: `#/components/schemas/${id}` });
const json = (id: string) => ({ 'application/json': { schema: ref(id) } });
const problem = (description: string) => ({
  description,
  content: { 'application/problem+json': { schema: ref('Problem') } },
});

const idParam = {
  name: 'id',
  in: 'path',
  required: true,
  description: 'Generation id (gen_ + 26 characters)',
  schema: { type: 'string', pattern: '^gen_[0-9A-HJKMNP-TV-Z]{26}$' },
};

const authErrors = {
  '401': problem('Missing, invalid or revoked API key'),
  '403': problem('The API key lacks the scope'),
};

const bodyErrors = {
  '400': problem('Invalid JSON or fields; `errors` names every bad field'),
  '413': problem(`Body larger than ${LIMITS.maxBodyBytes} bytes, or image too large`),
  '415': problem('Body is not application/json'),
  '422': problem("The request exceeds the model's limits"),
};

function components(): Json {
  // Every schema with a meta id (the shared contracts and the few above) is a component.
  const { schemas } = z.toJSONSchema(z.globalRegistry, { uri: (id) => `#/components/schemas/${id}` });
  const out: Json = {};
  for (const [id, schema] of Object.entries(schemas)) {
    const { $schema: _s, $id: _i, ...rest } = schema as Json;
    out[id] = rest;
  }
  return out;
}

/** Fails loudly if a route references a schema that was not generated. */
function checkReferences(doc: Json): void {
  const schemas = (doc['components'] as { schemas: Json }).schemas;
  const missing = new Set<string>();
  const walk = (v: unknown) => {
    if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === 'object') {
      for (const [k, child] of Object.entries(v)) {
        if (k === '$ref' && typeof child === 'string') {
          const id = child.replace('#/components/schemas/', '');
          if (!(id in schemas)) missing.add(id);
        } else walk(child);
      }
    }
  };
  walk(doc);
  if (missing.size > 0) throw new Error(`OpenAPI references unknown schemas: ${[...missing].join(', ')}`);
}

function queryParameters(shape: Record<string, z.ZodType> = ListQuerySchema.shape): Json[] {
  return Object.entries(shape).map(([name, schema]) => {
    const { $schema: _s, description, ...rest } = z.toJSONSchema(schema, { io: 'input' }) as Json;
    return { name, in: 'query', required: !schema.safeParse(undefined).success, description, schema: rest };
  });
}

export function buildOpenApiDocument(options: { serverUrl?: string } = {}): Json {
  const doc: Json = {
    openapi: '3.1.0',
    info: {
      title: 'sd3-serverless API',
      version: '1.0.0',
      description:
        'Stable Diffusion 3 image generation. Jobs are queued and run on GPU workers; follow them by polling, ' +
        'with `Prefer: wait=N`, or with Server-Sent Events. Errors are RFC 9457 problem+json.',
    },
    ...(options.serverUrl ? { servers: [{ url: options.serverUrl }] } : {}),
    security: [{ bearerAuth: [] }],
    tags: [{ name: 'generations' }, { name: 'openai' }, { name: 'meta' }],
    paths: {
      '/v1/generations': {
        post: {
          tags: ['generations'],
          operationId: 'createGeneration',
          summary: 'Create a generation',
          description:
            'Queues a job and answers 202 with it. `Idempotency-Key`: the same key and body return the same job ' +
            '(`Idempotent-Replayed: true`); the same key with another body is a 409. `Prefer: wait=N` (N ≤ 60) ' +
            'waits for the result: 200 with the finished job, or 202 when it is still running. Needs the `generate` scope.',
          parameters: [
            {
              name: 'Idempotency-Key',
              in: 'header',
              required: false,
              schema: { type: 'string', minLength: 1, maxLength: 255 },
            },
            {
              name: 'Prefer',
              in: 'header',
              required: false,
              description: `wait=N, N from 0 to ${LIMITS.maxWaitSeconds} seconds`,
              schema: { type: 'string', examples: ['wait=30'] },
            },
          ],
          requestBody: { required: true, content: json('GenerationRequest') },
          responses: {
            '200': {
              description:
                'Finished within Prefer: wait, or a replay of a finished job; with `dry_run: true` the price quote ' +
                '(`{ object: "quote", model, params, usage, quote, currency }`) and nothing is created',
              content: json('Generation'),
            },
            '202': { description: 'Queued', content: json('Generation') },
            ...bodyErrors,
            ...authErrors,
            '402': problem(
              'insufficient_credits: the quote is more than the prepaid balance (`quote` and `balance` say by how much); ' +
                'spend_cap_exceeded: the quote would take this UTC month past the monthly spend cap ' +
                '(`quote`, `monthly_spend_cap`, `spent_this_month`, `month`)',
            ),
            '409': problem('Idempotency-Key reused with a different body, or still in progress'),
            '503': problem('The job could not be queued (it is marked failed); retry after Retry-After'),
          },
        },
        get: {
          tags: ['generations'],
          operationId: 'listGenerations',
          summary: "List the caller's generations, newest first",
          parameters: queryParameters(),
          responses: {
            '200': { description: 'A page', content: json('GenerationList') },
            '400': problem('Bad query'),
            ...authErrors,
          },
        },
      },
      '/v1/generations/quote': {
        post: {
          tags: ['generations'],
          operationId: 'quoteGeneration',
          summary: 'Price a generation without running it',
          description:
            'The same body and validation as create (400 and 422 alike, the image is checked too), but nothing is ' +
            "created, reserved or queued. With billing on, `balance` and `monthly_spend_left` show the tenant's room " +
            'now (a create may still be refused if it changes meanwhile). Needs the `read` or `generate` scope.',
          requestBody: { required: true, content: json('GenerationRequest') },
          responses: {
            '200': { description: 'The price', content: json('Quote') },
            ...bodyErrors,
            ...authErrors,
          },
        },
      },
      '/v1/generations/{id}': {
        get: {
          tags: ['generations'],
          operationId: 'getGeneration',
          summary: 'Get a generation (output URLs are presigned afresh on every read)',
          parameters: [idParam],
          responses: {
            '200': { description: 'The job', content: json('Generation') },
            ...authErrors,
            '404': problem('No such generation'),
          },
        },
      },
      '/v1/generations/{id}/cancel': {
        post: {
          tags: ['generations'],
          operationId: 'cancelGeneration',
          summary: 'Cancel a generation',
          description:
            'Queued: canceled at once (200). Running: the runner stops between steps (202). Finished: 409.',
          parameters: [idParam],
          responses: {
            '200': { description: 'Canceled', content: json('Generation') },
            '202': { description: 'Cancellation requested', content: json('Generation') },
            ...authErrors,
            '404': problem('No such generation'),
            '409': problem('Already finished'),
          },
        },
      },
      '/v1/generations/{id}/webhooks': {
        get: {
          tags: ['webhooks'],
          operationId: 'listWebhookDeliveries',
          summary: 'Webhook delivery log of a generation',
          description:
            'One entry per event sent to `webhook_url`: every attempt (time, status code or error), the state ' +
            '(pending, delivered, failed) and the next retry. Deliveries are signed per Standard Webhooks ' +
            '(`webhook-id` = the event id, `webhook-timestamp`, `webhook-signature: v1,…`) with the tenant secret. ' +
            'Without `webhook_events` only terminal events are sent (`generation.preview` only when listed, ' +
            'without the image); retries back off for more than 24 h.',
          parameters: [idParam],
          responses: {
            '200': { description: 'The delivery log', content: json('WebhookDeliveryList') },
            ...authErrors,
            '404': problem('No such generation'),
          },
        },
      },
      '/v1/generations/{id}/webhooks/resend': {
        post: {
          tags: ['webhooks'],
          operationId: 'resendWebhook',
          summary: 'Send an event to the webhook again',
          description:
            'Starts a new delivery round for `event_id` (default: the terminal event), even if it was delivered.',
          parameters: [idParam],
          requestBody: { required: false, content: json('WebhookResendRequest') },
          responses: {
            '202': { description: 'Queued for delivery', content: json('WebhookDelivery') },
            '400': problem('Unknown event_id or bad body'),
            ...authErrors,
            '404': problem('No such generation'),
            '422': problem('No webhook_url, or not finished and no event_id'),
            '503': problem('The events queue did not accept it'),
          },
        },
      },
      '/v1/generations/{id}/events': {
        get: {
          tags: ['generations'],
          operationId: 'streamGenerationEvents',
          summary: 'Server-Sent Events of a generation',
          description:
            'Each message: `id` = event id, `event` = type, `data` = the GenerationEvent JSON. Resume with `Last-Event-ID`. ' +
            'The stream ends after the terminal event. With `previews: true`, `generation.preview` events (`data`: ' +
            '`step`, `total_steps`) come every few steps; the one matching the latest preview also carries `image` ' +
            '(a `data:image/jpeg;base64,…` URI, at most 128 px a side), `width` and `height`. Replayed older previews ' +
            'carry no image; the job object keeps the latest in `preview`.',
          parameters: [
            idParam,
            { name: 'Last-Event-ID', in: 'header', required: false, schema: { type: 'string' } },
          ],
          responses: {
            '200': {
              description: 'An event stream',
              content: { 'text/event-stream': { schema: ref('GenerationEvent') } },
            },
            '400': problem('Bad Last-Event-ID'),
            ...authErrors,
            '404': problem('No such generation'),
          },
        },
      },
      '/v1/images/generations': {
        post: {
          tags: ['openai'],
          operationId: 'createImageOpenAi',
          summary: 'OpenAI Images compatible generation (synchronous)',
          requestBody: { required: true, content: json('OpenAiImageRequest') },
          responses: {
            '200': { description: 'The images', content: json('OpenAiImageResponse') },
            ...bodyErrors,
            ...authErrors,
            '504': problem('Not finished in time; `generation_id` and Location say where to poll'),
          },
        },
      },
      '/v1/usage': {
        get: {
          tags: ['meta'],
          operationId: 'getUsage',
          summary: "The caller's tenant's settled usage and charges, summed per day, key or user",
          description: `Range [from, to), at most ${USAGE_MAX_RANGE_DAYS} days. Needs the \`read\` or \`generate\` scope.`,
          parameters: queryParameters(UsageQuerySchema.shape),
          responses: {
            '200': { description: 'The usage report', content: json('UsageReport') },
            '400': problem('A bad from, to or group_by'),
            ...authErrors,
          },
        },
      },
      '/v1/models': {
        get: {
          tags: ['meta'],
          operationId: 'listModels',
          summary: 'Models this deployment serves, with their limits',
          responses: { '200': { description: 'The models', content: json('ModelList') }, ...authErrors },
        },
      },
      '/openapi.json': {
        get: {
          tags: ['meta'],
          operationId: 'openApi',
          summary: 'This document',
          security: [],
          responses: { '200': { description: 'OpenAPI 3.1', content: { 'application/json': {} } } },
        },
      },
      '/docs': {
        get: {
          tags: ['meta'],
          operationId: 'docs',
          summary: 'The API reference page',
          security: [],
          responses: { '200': { description: 'HTML', content: { 'text/html': {} } } },
        },
      },
      '/': {
        get: {
          tags: ['meta'],
          operationId: 'playground',
          summary: 'The playground page: paste a key, see the price, generate and watch it run',
          security: [],
          responses: { '200': { description: 'HTML', content: { 'text/html': {} } } },
        },
      },
      '/playground/{file}': {
        get: {
          tags: ['meta'],
          operationId: 'playgroundAsset',
          summary: "The playground's script (app.js) and stylesheet (app.css)",
          security: [],
          parameters: [
            {
              name: 'file',
              in: 'path',
              required: true,
              schema: { type: 'string', enum: ['app.js', 'app.css'] },
            },
          ],
          responses: {
            '200': { description: 'The file', content: { 'text/javascript': {}, 'text/css': {} } },
            '404': problem('No such file'),
          },
        },
      },
      '/healthz': {
        get: {
          tags: ['meta'],
          operationId: 'health',
          summary: 'Liveness',
          security: [],
          responses: { '200': { description: 'Alive', content: json('Health') } },
        },
      },
    },
    components: {
      securitySchemes: {
        bearerAuth: {
          type: 'http',
          scheme: 'bearer',
          description: 'API key: `Authorization: Bearer sk_<key id>_<secret>`',
        },
      },
      schemas: components(),
    },
    'x-error-codes': ERROR_CODES,
  };
  checkReferences(doc);
  return doc;
}
