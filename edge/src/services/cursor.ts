/**
 * List cursors: base64url JSON of the last item's (createdAt, jobId). Opaque to clients; decoded
 * strictly so a forged or truncated cursor is a 400 naming `cursor`, never a 5xx. The tenant is
 * never in the cursor: it always comes from the API key.
 */
import { z } from 'zod';
import type { ListPosition } from '../ports/index.js';
import { JOB_ID_PATTERN } from './job-id.js';

const CursorSchema = z.strictObject({
  c: z.number().int().min(0),
  j: z.string().regex(JOB_ID_PATTERN),
});

function toBase64Url(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64url');
}

export function encodeCursor(pos: ListPosition): string {
  return toBase64Url(JSON.stringify({ c: pos.createdAt, j: pos.jobId }));
}

/** Returns null for anything that is not a cursor this edge wrote. */
export function decodeCursor(cursor: string): ListPosition | null {
  if (!/^[A-Za-z0-9_-]{1,512}$/.test(cursor)) return null;
  let raw: unknown;
  try {
    raw = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    return null;
  }
  const parsed = CursorSchema.safeParse(raw);
  return parsed.success ? { createdAt: parsed.data.c, jobId: parsed.data.j } : null;
}
