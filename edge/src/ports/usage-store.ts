/** The usage ledger as the edge reads it (GET /v1/usage). */
import type { UsageRecord } from '@sd3/shared';

export interface UsageStore {
  /** A tenant's ledger items settled in [fromMs, toMs), oldest first. */
  query(tenantId: string, fromMs: number, toMs: number): Promise<UsageRecord[]>;
}
