/**
 * API keys look like `sk_<keyId>_<secret>`: the key id locates the record, only a SHA-256 of the
 * secret is stored, and the comparison is constant-time.
 */
const KEY_PATTERN = /^sk_([a-z0-9]{12})_([A-Za-z0-9]{32,64})$/;
const ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';
const SECRET_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

export interface ParsedApiKey {
  keyId: string;
  secret: string;
}

export function parseApiKey(token: string): ParsedApiKey | null {
  const m = KEY_PATTERN.exec(token);
  return m ? { keyId: m[1]!, secret: m[2]! } : null;
}

function randomString(alphabet: string, length: number): string {
  // Rejection sampling keeps every character uniformly likely.
  const out: string[] = [];
  const limit = 256 - (256 % alphabet.length);
  while (out.length < length) {
    for (const b of crypto.getRandomValues(new Uint8Array(length * 2))) {
      if (b < limit && out.length < length) out.push(alphabet[b % alphabet.length]!);
    }
  }
  return out.join('');
}

export function generateApiKey(): { token: string; keyId: string; secret: string } {
  const keyId = randomString(ALPHABET, 12);
  const secret = randomString(SECRET_ALPHABET, 40);
  return { token: `sk_${keyId}_${secret}`, keyId, secret };
}

export async function hashSecret(secret: string): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(secret));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
}

/** Constant-time equality of two hex digests. */
export function digestsEqual(a: string, b: string): boolean {
  let diff = a.length ^ b.length;
  for (let i = 0; i < Math.max(a.length, b.length); i++)
    diff |= (a.charCodeAt(i) || 0) ^ (b.charCodeAt(i) || 0);
  return diff === 0;
}
