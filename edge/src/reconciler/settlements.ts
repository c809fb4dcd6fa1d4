/**
 * Sweep 4: terminal jobs whose settlement is still `pending` (a runner or an edge crashed between
 * the terminal write and the refund): the shared settlement protocol completes it, idempotently
 * (its refund is conditional on a marker, the ledger put and the `done` write are conditional).
 */
import type { JobRecord } from '@sd3/shared';
import type { ReconcilerDeps } from './context.js';
import type { ReconcileReport } from './report.js';

/** Returns the record as it now stands (settlement `done` when completed here). */
export async function completePendingSettlement(
  deps: ReconcilerDeps,
  record: JobRecord,
  report: ReconcileReport,
): Promise<JobRecord> {
  if (record.settlement !== 'pending') return record;
  await deps.billing.completeSettlement(record);
  report.settlementsCompleted++;
  deps.logger.log('warn', 'pending settlement completed', {
    job_id: record.jobId,
    refund: record.refund ?? 0,
  });
  return { ...record, settlement: 'done' };
}
