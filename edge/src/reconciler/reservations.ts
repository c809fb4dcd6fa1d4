/**
 * Sweep 3: credit reservations without a job. The edge reserves a quote on the tenant (with a
 * marker, in the same write) before the job item exists; if the job write and then the release
 * failed (DynamoDB down, the edge died), the marker stays. For a marker older than `staleAfterMs`:
 *   - the job id is voided (a conditional put of a placeholder item): if the job exists the put
 *     fails and only the marker is dropped; if not, no late create can write that job any more;
 *   - then the quote goes back with the marker's removal in one write conditional on the marker,
 *     so it happens once whoever runs it.
 */
import { parseReservationMarker } from '@sd3/shared';
import type { ReconcilerDeps } from './context.js';
import type { ReconcileReport } from './report.js';

export async function sweepReservations(deps: ReconcilerDeps, report: ReconcileReport): Promise<void> {
  const cutoff = deps.clock.now() - deps.config.staleAfterMs;
  for (const { tenantId, markers } of await deps.openReservations()) {
    for (const marker of markers) {
      const parsed = parseReservationMarker(marker);
      if (!parsed) {
        deps.logger.log('error', 'unreadable reservation marker left in place', {
          tenant_id: tenantId,
          marker,
        });
        report.errors++;
        continue;
      }
      if (parsed.at >= cutoff) continue;
      try {
        const job = await deps.jobs.voidJobId(parsed.jobId, marker, deps.clock.now());
        if (job === 'exists') {
          await deps.billing.confirm(tenantId, marker);
          report.reservationsConfirmed++;
          continue;
        }
        if ((await deps.billing.release(tenantId, marker)) === 'released') {
          report.reservationsRefunded++;
          deps.logger.log('warn', 'credit reservation without a job refunded', {
            tenant_id: tenantId,
            job_id: parsed.jobId,
            quote: parsed.quote,
          });
        }
      } catch (err) {
        report.errors++;
        deps.logger.log('error', 'reconciler could not handle a reservation marker', {
          tenant_id: tenantId,
          job_id: parsed.jobId,
          error: err,
        });
      }
    }
  }
}
