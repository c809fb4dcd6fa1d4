/**
 * The crash-recovery reconciler as a Lambda on an EventBridge schedule (deps from the function's
 * environment; see reconciler/). Each invocation is one run; it returns the run's counts, which
 * are also logged as one JSON line. A failed sweep item is counted and retried by the next run.
 */
import { createAwsReconciler } from '../reconciler/aws.js';
import type { ReconcileReport } from '../reconciler/report.js';

const { reconciler } = createAwsReconciler(process.env);

export const handler = async (): Promise<ReconcileReport> => reconciler.runOnce();
