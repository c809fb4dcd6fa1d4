/**
 * The crash-recovery reconciler as a Lambda on an EventBridge schedule (deps from the function's
 * environment; see reconciler/). Each invocation is one run; its counts are logged as one JSON line.
 * A run that could not repair something fails the invocation, so the function's Errors metric (and
 * the `ReconcilerFailing` alarm) sees it; the next run retries whatever was left.
 */
import { createAwsReconciler } from '../reconciler/aws.js';
import { type ReconcileReport, reconcileOutcome } from '../reconciler/report.js';

const { reconciler } = createAwsReconciler(process.env);

export const handler = async (): Promise<ReconcileReport> => reconcileOutcome(await reconciler.runOnce());
