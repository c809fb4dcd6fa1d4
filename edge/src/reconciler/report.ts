/** What one reconciler run did, per sweep (logged as one JSON line per run). */
export interface ReconcileReport {
  /** Queued jobs whose message was sent again. */
  queuedResent: number;
  /** Running jobs (lease long lapsed) whose message was sent again. */
  runningResent: number;
  /** Jobs failed with `message_lost` (resends spent) and refunded. */
  lostFailed: number;
  /** Credit reservations whose job never appeared, refunded. */
  reservationsRefunded: number;
  /** Reservation markers whose job exists, dropped. */
  reservationsConfirmed: number;
  /** Terminal jobs whose pending settlement was completed. */
  settlementsCompleted: number;
  /** Terminal events sent to the events queue again (no delivery logged). */
  eventsResent: number;
  /** Terminal, settled, notified jobs taken off the open index. */
  jobsClosed: number;
  /** Items a sweep could not handle this run (logged; the next run tries again). */
  errors: number;
}

export function emptyReport(): ReconcileReport {
  return {
    queuedResent: 0,
    runningResent: 0,
    lostFailed: 0,
    reservationsRefunded: 0,
    reservationsConfirmed: 0,
    settlementsCompleted: 0,
    eventsResent: 0,
    jobsClosed: 0,
    errors: 0,
  };
}

/** Thrown by a scheduled run that left errors, so the platform counts the run as failed. */
export class ReconcileRunError extends Error {
  constructor(readonly report: ReconcileReport) {
    super(`the reconciler run left ${report.errors} item(s) unrepaired; the next run retries them`);
    this.name = 'ReconcileRunError';
  }
}

/** The report of a clean run; a run with errors throws ReconcileRunError carrying its report. */
export function reconcileOutcome(report: ReconcileReport): ReconcileReport {
  if (report.errors > 0) throw new ReconcileRunError(report);
  return report;
}
