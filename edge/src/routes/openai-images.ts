/**
 * POST /v1/images/generations, the OpenAI Images shape mapped onto a native job: `size` "WxH" ->
 * width/height, `n`, `output_format`, `user`; `response_format` url (presigned) or b64_json (read
 * back from the bucket). Synchronous: it waits for the job; when it does not finish in time the
 * answer is a 504 problem carrying the generation id (and Location), so the client can poll.
 */
import {
  ERROR_CODES,
  type ErrorCode,
  type GenerationRequest,
  LIMITS,
  OpenAiImageRequestSchema,
  type OpenAiImageResponse,
} from '@sd3/shared';
import type { Hono } from 'hono';
import { ApiError } from '../errors/api-error.js';
import type { AppEnv } from '../http/app-env.js';
import { requireKey } from '../http/auth.js';
import { fieldErrors } from '../http/field-errors.js';
import { readJsonBody } from '../http/json-body.js';
import { submitGeneration, validateGenerationRequest } from '../services/create-job.js';
import { waitForTerminal } from '../services/job-access.js';
import { outputTtlSeconds } from '../services/job-view.js';
import type { RouteContext } from './context.js';
import { jobPath } from './generations.js';

function failureCode(code: string | undefined): ErrorCode {
  return code !== undefined && code in ERROR_CODES ? (code as ErrorCode) : 'pipeline_failed';
}

export function registerOpenAiRoutes(app: Hono<AppEnv>, { deps, keyCache }: RouteContext): void {
  app.post('/v1/images/generations', requireKey(keyCache, 'generate'), async (c) => {
    const body = await readJsonBody(c.req.raw, LIMITS.maxBodyBytes);
    const parsed = OpenAiImageRequestSchema.safeParse(body);
    if (!parsed.success) throw ApiError.fields(fieldErrors(parsed.error));
    const o = parsed.data;
    const native: GenerationRequest = { prompt: o.prompt };
    if (o.model !== undefined) native.model = o.model;
    if (o.n !== undefined) native.n = o.n;
    if (o.output_format !== undefined) native.output_format = o.output_format;
    if (o.user !== undefined) native.user = o.user;
    if (o.size !== undefined) {
      const [w, h] = o.size.split('x').map(Number) as [number, number];
      native.width = w;
      native.height = h;
    }
    const validated = validateGenerationRequest(deps, native, {
      width: 'size',
      height: 'size',
      aspect_ratio: 'size',
    });
    const { record } = await submitGeneration(deps, c.get('caller'), validated, {
      requestId: c.get('requestId'),
    });
    c.set('acceptedJobId', record.jobId);
    const final = await waitForTerminal(deps, record, deps.tuning.openAiWaitSeconds * 1000, c.req.raw.signal);
    const where = { location: jobPath(final.jobId) };
    if (final.status === 'failed') {
      throw new ApiError(
        failureCode(final.error?.code),
        `generation ${final.jobId} failed: ${final.error?.message ?? 'unknown error'}`,
        { headers: where, extensions: { generation_id: final.jobId } },
      );
    }
    if (final.status === 'canceled') {
      throw new ApiError('unprocessable', `generation ${final.jobId} was canceled`, {
        headers: where,
        extensions: { generation_id: final.jobId },
      });
    }
    if (final.status !== 'succeeded') {
      throw new ApiError(
        'generation_timeout',
        `generation ${final.jobId} is still ${final.status}; follow it at ${jobPath(final.jobId)}`,
        { headers: { ...where, 'retry-after': '5' }, extensions: { generation_id: final.jobId } },
      );
    }
    const outputs = [...(final.outputs ?? [])].sort((a, b) => a.index - b.index);
    const data = await Promise.all(
      outputs.map(async (out) => {
        if (o.response_format === 'b64_json') {
          const bytes = await deps.objects.get(out.key);
          if (!bytes) throw new Error(`output ${out.key} of ${final.jobId} is missing from the bucket`);
          return { b64_json: Buffer.from(bytes).toString('base64') };
        }
        return { url: await deps.objects.presignGet(out.key, outputTtlSeconds(final)) };
      }),
    );
    const response: OpenAiImageResponse = { created: Math.floor(final.createdAt / 1000), data };
    c.header('location', jobPath(final.jobId));
    return c.json(response);
  });
}
