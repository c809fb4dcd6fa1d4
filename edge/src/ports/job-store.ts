/**
 * The jobs table as the edge sees it. Every status change is conditional (shared JobRecord doc):
 * a method returns the updated record, or null when the condition no longer held (someone else
 * moved the job first), so callers re-read and decide again instead of overwriting.
 */
import type { JobEvent, JobRecord, JobStatus } from '@sd3/shared';

/** Position in a tenant's newest-first listing; opaque to clients (see services/cursor.ts). */
export interface ListPosition {
  createdAt: number;
  jobId: string;
}

export interface ListJobsQuery {
  tenantId: string;
  limit: number;
  after?: ListPosition;
  status?: JobStatus;
}

export interface JobPage {
  items: JobRecord[];
  /** Where the next page starts, or null when this was the last one. */
  next: ListPosition | null;
}

export class JobExistsError extends Error {
  override readonly name = 'JobExistsError';
}

export interface JobStore {
  /** Writes a new job; throws JobExistsError when the id is taken. */
  create(record: JobRecord): Promise<void>;
  get(jobId: string): Promise<JobRecord | null>;
  listByTenant(query: ListJobsQuery): Promise<JobPage>;
  /** Queued jobs of the same model created before `createdAt` (the sparse queuedByModel index). */
  queuePosition(model: string, createdAt: number): Promise<number>;
  /** Records the SQS message once sent. */
  markEnqueued(jobId: string, messageId: string, at: number): Promise<void>;
  /** queued -> canceled with the event appended; null if the job left queued or got another event. */
  cancelQueued(current: JobRecord, event: JobEvent, at: number): Promise<JobRecord | null>;
  /** running: sets cancelRequested; null if the job is no longer running. */
  requestCancel(jobId: string, at: number): Promise<JobRecord | null>;
  /** queued -> failed with `error` and the event appended; null if the job left queued. */
  failQueued(
    current: JobRecord,
    error: { code: string; message: string },
    event: JobEvent,
    at: number,
  ): Promise<JobRecord | null>;
}
