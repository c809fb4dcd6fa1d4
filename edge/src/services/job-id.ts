/**
 * Job ids: `gen_` + 26 Crockford base32 characters, ULID-like: 10 for the creation time in ms
 * (so ids sort by time) and 16 random (80 bits). Only uppercase letters and digits, so they are
 * safe in URLs and S3 keys.
 */
const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

export const JOB_ID_PATTERN = /^gen_[0-9A-HJKMNP-TV-Z]{26}$/;

export function newJobId(now: number): string {
  let time = '';
  let t = Math.floor(now);
  for (let i = 0; i < 10; i++) {
    time = CROCKFORD[t % 32]! + time;
    t = Math.floor(t / 32);
  }
  let random = '';
  // 16 bytes, 5 bits used from each: 80 random bits.
  for (const b of crypto.getRandomValues(new Uint8Array(16))) random += CROCKFORD[b & 31]!;
  return `gen_${time}${random}`;
}

export function isJobId(value: string): boolean {
  return JOB_ID_PATTERN.test(value);
}
