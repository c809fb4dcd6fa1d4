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
  | ({ kind: 'reserved'; marker: string } & ReservedFrom)
  /** The tenant has neither a prepaid balance nor a cap: nothing is reserved, nothing will be refunded. */
  | { kind: 'unenforced' }
  | { kind: 'insufficient'; balance: number }
  | { kind: 'over_cap'; cap: number; spent: number; month: string };

/** What a tenant can spend now (millicredits); absent fields are not enforced. */
export interface SpendingRoom {
  balance?: number;
  /** Cap minus this UTC month's spend, at least 0. */
  monthlySpendLeft?: number;
}

export interface BillingStore {
  /** One read of the tenant, for quotes (not a reservation: a create may still be refused). */
  room(tenantId: string, now: number): Promise<SpendingRoom>;
  /**
   * Takes the quote for job `jobId`; the same conditional write adds the reservation's marker
   * (shared `reservationMarker`) to the tenant's `openReservations`, so a reservation whose job is
   * never written can be found and refunded after a crash (edge/src/reconciler).
   */
  reserve(tenantId: string, quote: number, now: number, jobId: string): Promise<Reservation>;
  /**
   * Gives back a reservation whose job was never written, at most once: the refund and the removal
   * of its marker are one write conditional on the marker. 'absent': already given back.
   */
  release(tenantId: string, marker: string): Promise<'released' | 'absent'>;
  /** Drops the marker of a reservation whose job item is written (its refund now goes by the job). */
  confirm(tenantId: string, marker: string): Promise<void>;
  /**
   * Completes a terminal job's `pending` settlement: the refund goes back to the balance and to the
   * month's spend exactly once (even when called again after a crash or by several callers), then
   * the job is marked `done`.
   */
  completeSettlement(job: JobRecord): Promise<void>;
}
