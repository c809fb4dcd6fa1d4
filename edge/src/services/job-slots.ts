/**
 * Concurrent-jobs limit. A key's queued/running jobs hold entries `<jobId>|<createdAt>` in one
 * rate-limits item; create adds its entry with a conditional write (`size(slots) < limit`), so
 * instances racing for the last slot cannot both win. Nothing has to release a slot when a job
 * ends (the runner, cancel and the stale-enqueue sweep stay unaware of limits): when the item is
 * full, the creating edge reads the jobs behind the entries (strongly consistent reads of the jobs
 * table) and drops the ones that finished, then tries again. A crashed edge or runner therefore
 * never leaks a slot for good.
 */
import { isTerminal } from '@sd3/shared';
import type { ResolvedDeps } from '../deps.js';
import { ApiError } from '../errors/api-error.js';

/** An entry whose job is missing is kept this long: its create may still be writing the job. */
const IN_FLIGHT_GRACE_MS = 60_000;

export const slotEntry = (jobId: string, createdAt: number) => `${jobId}|${createdAt}`;

async function finishedEntries(deps: ResolvedDeps, entries: string[], now: number): Promise<string[]> {
  const done: string[] = [];
  await Promise.all(
    entries.map(async (entry) => {
      const sep = entry.lastIndexOf('|');
      const jobId = entry.slice(0, sep);
      const createdAt = Number(entry.slice(sep + 1));
      const job = await deps.jobs.get(jobId);
      if (job ? isTerminal(job.status) : !(now - createdAt < IN_FLIGHT_GRACE_MS)) done.push(entry);
    }),
  );
  return done;
}

/** Takes a job slot for the key or throws 429 rate_limited. */
export async function acquireJobSlot(
  deps: ResolvedDeps,
  keyId: string,
  limit: number,
  jobId: string,
  now: number,
): Promise<void> {
  const entry = slotEntry(jobId, now);
  if (await deps.rateLimits.acquireSlot(keyId, entry, limit)) return;
  const held = await deps.rateLimits.slots(keyId);
  const done = await finishedEntries(deps, held, now);
  if (done.length > 0) {
    await deps.rateLimits.releaseSlots(keyId, done);
    if (await deps.rateLimits.acquireSlot(keyId, entry, limit)) return;
  }
  throw new ApiError(
    'rate_limited',
    `this API key already has ${limit} queued or running generations (its limit); retry when one finishes`,
    { headers: { 'retry-after': '5' } },
  );
}

/** Gives a slot back early (the job was never written, or failed at once); errors are logged. */
export async function releaseJobSlot(
  deps: ResolvedDeps,
  keyId: string,
  jobId: string,
  createdAt: number,
): Promise<void> {
  try {
    await deps.rateLimits.releaseSlots(keyId, [slotEntry(jobId, createdAt)]);
  } catch (err) {
    // Not fatal: the next create at the limit finds the job finished (or missing) and drops it.
    deps.logger.log('warn', 'could not release a job slot', { job_id: jobId, error: err });
  }
}
