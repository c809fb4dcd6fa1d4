/**
 * Per-key limit state shared by every edge instance (the rate-limits table): request counters per
 * one-minute window and the set of a key's job slots. Each operation is one conditional write on
 * one item, so concurrent requests on different instances can never overshoot a limit.
 */

export interface WindowHit {
  /** False when the window already held `limit` requests; nothing was counted then. */
  allowed: boolean;
  /** Requests counted in the window, this one included (when allowed). */
  count: number;
}

export interface RateLimitStore {
  /** Counts one request of the key in the window starting at `windowStart` (epoch ms). */
  hit(keyId: string, windowStart: number, limit: number, expiresAt: number): Promise<WindowHit>;
  /** Slot entries currently held by the key. */
  slots(keyId: string): Promise<string[]>;
  /** Adds `entry` unless the key already holds `limit` entries; true when added. */
  acquireSlot(keyId: string, entry: string, limit: number): Promise<boolean>;
  releaseSlots(keyId: string, entries: string[]): Promise<void>;
}
