/**
 * Reconciler settings. `staleAfterMs` is the one threshold every sweep uses: a queued job not sent
 * for that long, a running job whose lease lapsed that long ago, a reservation marker, a pending
 * settlement or an unlogged terminal event that old is treated as lost. It must exceed the longest
 * a healthy writer takes between two steps (an edge create, a runner's lease renewal), so the
 * production default is far above both (edge Lambda timeout 30 s, runner lease about a minute).
 */
import { z } from 'zod';
import { describeIssues } from '../deps.js';

export interface ReconcilerConfig {
  /** Milliseconds; default 15 minutes. */
  staleAfterMs: number;
  /** Resends of a lost job's message before it is failed with `message_lost`; default 3. */
  maxResends: number;
}

export const DEFAULT_RECONCILER_CONFIG: ReconcilerConfig = {
  staleAfterMs: 15 * 60_000,
  maxResends: 3,
};

const ConfigSchema = z.object({
  staleAfterMs: z
    .number()
    .int()
    .min(100, { message: 'at least 100 ms' })
    .max(7 * 24 * 3600_000, { message: 'at most 7 days' }),
  maxResends: z.number().int().min(0).max(100),
});

export function resolveReconcilerConfig(partial: Partial<ReconcilerConfig> = {}): ReconcilerConfig {
  const merged = { ...DEFAULT_RECONCILER_CONFIG, ...partial };
  const checked = ConfigSchema.safeParse(merged);
  if (!checked.success)
    throw new Error(`invalid reconciler configuration:\n${describeIssues(checked.error)}`);
  return checked.data;
}
