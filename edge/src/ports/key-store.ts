/** API key records by key id (the keys table). Recording last use is the pay-per-use issue's. */
import type { KeyRecord } from '@sd3/shared';

export interface KeyStore {
  get(keyId: string): Promise<KeyRecord | null>;
}
