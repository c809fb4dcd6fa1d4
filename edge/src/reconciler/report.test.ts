import assert from 'node:assert/strict';
import { test } from 'node:test';
import { emptyReport, ReconcileRunError, reconcileOutcome } from './report.js';

test('a clean run returns its report; a run with errors fails with the report attached', () => {
  const clean = { ...emptyReport(), queuedResent: 2 };
  assert.equal(reconcileOutcome(clean), clean);
  const failed = { ...emptyReport(), eventsResent: 1, errors: 3 };
  assert.throws(
    () => reconcileOutcome(failed),
    (err: unknown) =>
      err instanceof ReconcileRunError && err.report === failed && /3 item\(s\) unrepaired/.test(err.message),
  );
});
