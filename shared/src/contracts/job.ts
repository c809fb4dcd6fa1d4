/** The generation job as the API returns it, and the event objects of SSE, webhooks and history. */
import { z } from 'zod';
import { JobCostSchema } from './billing.js';
import { EVENT_TYPES, NormalizedParamsSchema, OUTPUT_FORMATS } from './generation-request.js';

export const JOB_STATUSES = ['queued', 'running', 'succeeded', 'failed', 'canceled'] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];
export const TERMINAL_STATUSES: readonly JobStatus[] = ['succeeded', 'failed', 'canceled'];
export const isTerminal = (s: JobStatus): boolean => TERMINAL_STATUSES.includes(s);

export const JobOutputSchema = z
  .object({
    index: z.number().int(),
    url: z.string().describe('Presigned GET URL, re-signed on every read'),
    url_expires_at: z.string().describe('ISO 8601'),
    format: z.enum(OUTPUT_FORMATS),
    width: z.number().int(),
    height: z.number().int(),
    bytes: z.number().int(),
    seed: z.number().int(),
  })
  .meta({ id: 'GenerationOutput' });

export const JobTimingsSchema = z
  .object({
    queue_ms: z.number().optional(),
    model_load_ms: z.number().optional(),
    encode_ms: z.number().optional(),
    denoise_ms: z.number().optional(),
    decode_ms: z.number().optional(),
    upload_ms: z.number().optional(),
    total_ms: z.number().optional(),
  })
  .meta({ id: 'GenerationTimings' });
export type JobTimings = z.infer<typeof JobTimingsSchema>;

export const JobErrorSchema = z
  .object({ code: z.string(), message: z.string() })
  .meta({ id: 'GenerationError' });

export const JobPreviewSchema = z
  .object({
    step: z.number().int(),
    total_steps: z.number().int(),
    image: z.string().describe('data:image/jpeg;base64,… or data:image/webp;base64,…'),
    width: z.number().int(),
    height: z.number().int(),
  })
  .meta({ id: 'GenerationPreview' });
export type JobPreview = z.infer<typeof JobPreviewSchema>;

export const JobSchema = z
  .object({
    id: z.string(),
    object: z.literal('generation'),
    status: z.enum(JOB_STATUSES),
    model: z.string(),
    created_at: z.string(),
    started_at: z.string().nullable(),
    completed_at: z.string().nullable(),
    queue_position: z.number().int().nullable().describe('Jobs ahead of this one while queued'),
    progress: z.object({ step: z.number().int(), total_steps: z.number().int() }).nullable(),
    preview: JobPreviewSchema.nullable().describe(
      'The latest live preview (previews: true); null when none yet or not requested',
    ),
    params: NormalizedParamsSchema,
    image_to_image: z.boolean(),
    outputs: z.array(JobOutputSchema),
    error: JobErrorSchema.nullable(),
    timings: JobTimingsSchema,
    usage: z.object({ images: z.number().int(), megapixels: z.number(), steps: z.number().int() }),
    user: z.string().nullable(),
    webhook_url: z.string().nullable(),
    cost: JobCostSchema.nullable().describe('null for a free model'),
  })
  .meta({ id: 'Generation' });
export type Job = z.infer<typeof JobSchema>;

export const JobListSchema = z
  .object({
    object: z.literal('list'),
    data: z.array(JobSchema),
    next_cursor: z.string().nullable(),
  })
  .meta({ id: 'GenerationList' });

export const JobEventSchema = z
  .object({
    id: z.string().describe('Stable: `<job id>.<sequence>`; use it to dedupe and as Last-Event-ID'),
    type: z.enum(EVENT_TYPES),
    generation_id: z.string(),
    created_at: z.string(),
    data: z.record(z.string(), z.unknown()),
  })
  .meta({ id: 'GenerationEvent' });
export type JobEvent = z.infer<typeof JobEventSchema>;

/** Event ids sort by sequence within a job. */
export function eventId(jobId: string, seq: number): string {
  return `${jobId}.${String(seq).padStart(4, '0')}`;
}
