/**
 * Tenant credit balances and monthly spend caps (the tenants table). Amounts are integer
 * millicredits (shared billing.ts).
 */
import type { JobRecord } from '@sd3/shared';

/** Where a reserved quote was taken from, so a release or refund gives it back to the same places. */
export interface ReservedFrom {
  /** The quote was subtracted from the prepaid balance. */
  fromBalance: boolean;
  /** The quote was added to the tenant's spend counter of this UTC month (it has a monthly cap). */
  spendMonth?: string;
}

export type Reservation =
  /**
   * The quote was taken in one conditional write: from the balance (`creditBalance >= quote`) and/or
   * into this month's spend (`spentThisMonth + quote <= monthlySpendCap`), whichever the tenant has.
   */
  | ({ kind: 'reserved' } & ReservedFrom)
  /** The tenant has neither a prepaid balance nor a cap: nothing is reserved, nothing will be refunded. */
  | { kind: 'unenforced' }
  | { kind: 'insufficient'; balance: number }
  | { kind: 'over_cap'; cap: number; spent: number; month: string };

export interface BillingStore {
  reserve(tenantId: string, quote: number, now: number): Promise<Reservation>;
  /** Gives back a reservation whose job was never written (the create failed before the job existed). */
  release(tenantId: string, amount: number, from: ReservedFrom): Promise<void>;
  /**
   * Completes a terminal job's `pending` settlement: the refund goes back to the balance and to the
   * month's spend exactly once (even when called again after a crash or by several callers), then
   * the job is marked `done`.
   */
  completeSettlement(job: JobRecord): Promise<void>;
}
