/**
 * Terminal jobs still on the open index: complete a pending settlement (sweep 4), send a lost
 * terminal event again (sweep 5), then close the job (take it off the index) once it is settled
 * and its event is logged, not wanted, or given up on. Only jobs that finished more than
 * `staleAfterMs` ago are read, so the normal writers (runner, edge, notifier) go first; each costs
 * one strongly consistent read and one conditional write, once.
 */
import { isTerminal } from '@sd3/shared';
import type { ReconcilerDeps } from './context.js';
import { resendLostEvent } from './lost-events.js';
import type { OpenJob } from './open-jobs.js';
import type { ReconcileReport } from './report.js';
import { completePendingSettlement } from './settlements.js';

export async function sweepTerminalJobs(
  deps: ReconcilerDeps,
  open: OpenJob[],
  report: ReconcileReport,
): Promise<void> {
  const cutoff = deps.clock.now() - deps.config.staleAfterMs;
  for (const entry of open) {
    if (!isTerminal(entry.status) || (entry.completedAt ?? entry.createdAt) >= cutoff) continue;
    try {
      const read = await deps.jobs.get(entry.jobId);
      if (!read || !isTerminal(read.status)) continue;
      const record = await completePendingSettlement(deps, read, report);
      const event = await resendLostEvent(deps, record, report);
      if (event === 'waiting' || event === 'resent') continue;
      if (await deps.jobs.close(record.jobId)) report.jobsClosed++;
    } catch (err) {
      report.errors++;
      deps.logger.log('error', 'reconciler could not handle a finished job', {
        job_id: entry.jobId,
        error: err,
      });
    }
  }
}
