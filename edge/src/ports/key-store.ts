/** API key records by key id (the keys table). */
import type { KeyRecord } from '@sd3/shared';

export interface KeyStore {
  get(keyId: string): Promise<KeyRecord | null>;
  /**
   * Sets lastUsedAt = at unless it is already after `cutoff` (another instance wrote it
   * recently); a conditional write, so many instances still write about once per interval.
   */
  touchLastUsed(keyId: string, at: number, cutoff: number): Promise<void>;
}
