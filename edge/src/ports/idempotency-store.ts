/**
 * Idempotency-Key reservations, one per (tenant, key). The first request reserves the key with
 * the hash of its canonical body and the job id it will create; a retry finds the record.
 */
export interface IdempotencyRecord {
  /** `<tenantId>:<Idempotency-Key>` */
  scope: string;
  requestHash: string;
  jobId: string;
  /** Epoch ms. */
  createdAt: number;
  /** TTL, epoch seconds. */
  expiresAt: number;
}

export interface IdempotencyStore {
  /** Reserves the scope; returns null when reserved now, else the live record already there. */
  reserve(record: IdempotencyRecord, now: number): Promise<IdempotencyRecord | null>;
  /** Drops a reservation whose request failed, so a retry can run (only if it is still `jobId`'s). */
  release(scope: string, jobId: string): Promise<void>;
}
