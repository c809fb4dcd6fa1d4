/**
 * JobRecord (the table item) -> the public Job (shared JobSchema). Output URLs are presigned on
 * every read with the TTL the request asked for (bounded by LIMITS); the queue position comes from
 * the sparse queuedByModel index and is null unless the job is queued.
 */
import { type Job, type JobRecord, jobCost, LIMITS, toPublicPreview } from '@sd3/shared';
import type { ResolvedDeps } from '../deps.js';

const iso = (ms: number | undefined) => (ms === undefined ? null : new Date(ms).toISOString());

export function outputTtlSeconds(record: JobRecord): number {
  const asked = record.params.output_ttl_seconds;
  return Math.min(LIMITS.maxOutputTtl, Math.max(LIMITS.minOutputTtl, asked));
}

export async function toPublicJob(deps: ResolvedDeps, record: JobRecord): Promise<Job> {
  const ttl = outputTtlSeconds(record);
  const now = deps.clock.now();
  const records = record.outputs ?? [];
  const [outputs, position] = await Promise.all([
    Promise.all(
      records.map(async (o) => ({
        index: o.index,
        url: await deps.objects.presignGet(o.key, ttl),
        url_expires_at: new Date(now + ttl * 1000).toISOString(),
        format: o.format,
        width: o.width,
        height: o.height,
        bytes: o.bytes,
        seed: o.seed,
      })),
    ),
    record.status === 'queued'
      ? deps.jobs.queuePosition(record.model, record.createdAt)
      : Promise.resolve(null),
  ]);
  const megapixels = records.reduce((sum, o) => sum + (o.width * o.height) / 1e6, 0);
  const steps = record.status === 'succeeded' ? record.params.steps : (record.progress?.step ?? 0);
  return {
    id: record.jobId,
    object: 'generation',
    status: record.status,
    model: record.model,
    created_at: new Date(record.createdAt).toISOString(),
    started_at: iso(record.startedAt),
    completed_at: iso(record.completedAt),
    queue_position: position,
    progress: record.progress
      ? { step: record.progress.step, total_steps: record.progress.totalSteps }
      : null,
    preview: record.preview ? toPublicPreview(record.preview) : null,
    params: record.params,
    image_to_image: record.inputImageKey !== undefined,
    outputs,
    error: record.error ? { code: record.error.code, message: record.error.message } : null,
    timings: record.timings ?? {},
    usage: { images: records.length, megapixels: Math.round(megapixels * 1e4) / 1e4, steps },
    user: record.user ?? null,
    webhook_url: record.webhookUrl ?? null,
    cost: jobCost(record),
  };
}
