/**
 * The crash-recovery reconciler: one run sweeps, per served model, the open jobs (lost messages,
 * pending settlements, lost terminal events, closing finished jobs), then the tenants' open credit
 * reservations. Idempotent and safe to run beside itself, the edge and the runners: every write is
 * conditional on what it was decided on. One JSON log line per run carries the counts.
 */
import type { ReconcilerDeps } from './context.js';
import { sweepLostMessages } from './lost-messages.js';
import { emptyReport, type ReconcileReport } from './report.js';
import { sweepReservations } from './reservations.js';
import { sweepTerminalJobs } from './terminal-jobs.js';

export interface Reconciler {
  runOnce(): Promise<ReconcileReport>;
}

export function createReconciler(deps: ReconcilerDeps): Reconciler {
  return {
    async runOnce() {
      const started = Date.now();
      const report = emptyReport();
      for (const model of deps.models) {
        try {
          const open = await deps.jobs.list(model);
          await sweepLostMessages(deps, model, open, report);
          await sweepTerminalJobs(deps, open, report);
        } catch (err) {
          report.errors++;
          deps.logger.log('error', 'reconciler could not sweep a model', { model, error: err });
        }
      }
      try {
        await sweepReservations(deps, report);
      } catch (err) {
        report.errors++;
        deps.logger.log('error', 'reconciler could not sweep the credit reservations', { error: err });
      }
      deps.logger.log(report.errors > 0 ? 'warn' : 'info', 'reconciler run', {
        ...report,
        duration_ms: Date.now() - started,
      });
      return report;
    },
  };
}
