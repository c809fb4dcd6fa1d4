/**
 * Tenant credit balances (the tenants table). Amounts are integer millicredits (shared billing.ts).
 */
import type { JobRecord } from '@sd3/shared';

export type Reservation =
  /** The quote was taken from the balance (one conditional write: `creditBalance >= quote`). */
  | { kind: 'reserved' }
  /** The tenant has no prepaid balance: nothing is reserved, nothing will be refunded. */
  | { kind: 'unenforced' }
  | { kind: 'insufficient'; balance: number };

export interface BillingStore {
  reserve(tenantId: string, quote: number): Promise<Reservation>;
  /** Gives back a reservation whose job was never written (the create failed before the job existed). */
  release(tenantId: string, amount: number): Promise<void>;
  /**
   * Completes a terminal job's `pending` settlement: the refund goes back to the balance exactly once
   * (even when called again after a crash or by several callers), then the job is marked `done`.
   */
  completeSettlement(job: JobRecord): Promise<void>;
}
