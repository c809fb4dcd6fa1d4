/**
 * The reconciler on a timer (the local stack; in AWS an EventBridge schedule invokes the Lambda).
 * Runs never overlap within one loop; `runNow` joins the run in progress or starts one, so a test
 * can force a sweep and see its report.
 */
import type { Logger } from '../logger.js';
import type { Reconciler } from './reconciler.js';
import type { ReconcileReport } from './report.js';

export interface ReconcilerLoop {
  /** Runs the reconciler now (after the run in progress, if any) and returns its report. */
  runNow(): Promise<ReconcileReport>;
  /** Stops the timer and waits for the run in progress. */
  stop(): Promise<void>;
}

export function startReconcilerLoop(options: {
  reconciler: Reconciler;
  intervalMs: number;
  logger?: Logger;
}): ReconcilerLoop {
  const { reconciler, intervalMs } = options;
  if (!Number.isInteger(intervalMs) || intervalMs < 10) {
    throw new Error(`reconciler interval must be a whole number of ms, at least 10 (got ${intervalMs})`);
  }
  let current: Promise<ReconcileReport> | null = null;
  let stopped = false;
  const run = (): Promise<ReconcileReport> => {
    const next = (current ?? Promise.resolve(null)).catch(() => null).then(() => reconciler.runOnce());
    const tracked = next.finally(() => {
      if (current === tracked) current = null;
    });
    current = tracked;
    return tracked;
  };
  const timer = setInterval(() => {
    if (stopped || current) return;
    run().catch((err: unknown) => options.logger?.log('error', 'reconciler run failed', { error: err }));
  }, intervalMs);
  timer.unref();
  return {
    runNow: run,
    async stop() {
      stopped = true;
      clearInterval(timer);
      await current?.catch(() => undefined);
    },
  };
}
