/**
 * The SQS message: a job envelope signed with HMAC-SHA256 over its canonical JSON. The edge signs,
 * the runner verifies; a forged, altered, expired or malformed message is refused with a code.
 * Web Crypto only, so the same code runs in Lambda, in Node and in tests.
 */
import { z } from 'zod';
import { NormalizedParamsSchema } from '../contracts/generation-request.js';
import { canonicalJson } from './canonical-json.js';

export const ENVELOPE_VERSION = 1;

export const EnvelopePayloadSchema = z.strictObject({
  v: z.literal(ENVELOPE_VERSION),
  jobId: z.string().min(1),
  tenantId: z.string().min(1),
  model: z.string().min(1),
  params: NormalizedParamsSchema,
  /** S3 keys of inputs (the img2img image), never the bytes. */
  inputs: z.strictObject({ image: z.string().optional() }),
  /** Where outputs go: outputs/{tenant}/{job}/ */
  outputPrefix: z.string().min(1),
  issuedAt: z.number().int(),
  expiresAt: z.number().int(),
  kid: z.string().min(1),
});
export type EnvelopePayload = z.infer<typeof EnvelopePayloadSchema>;

export interface SignedEnvelope {
  payload: EnvelopePayload;
  /** base64url HMAC-SHA256 of canonicalJson(payload). */
  sig: string;
}

export type EnvelopeErrorCode = 'envelope_invalid' | 'envelope_expired';

export class EnvelopeError extends Error {
  override readonly name = 'EnvelopeError';
  constructor(
    readonly code: EnvelopeErrorCode,
    message: string,
    /** The job id when the payload could be read, so the runner can fail that job. */
    readonly jobId?: string,
  ) {
    super(message);
  }
}

/** Signing keys by key id; secrets are raw bytes (at least 32). */
export type SigningKeys = ReadonlyMap<string, Uint8Array>;

const encoder = new TextEncoder();

function base64url(bytes: ArrayBuffer): string {
  let bin = '';
  for (const b of new Uint8Array(bytes)) bin += String.fromCharCode(b);
  return btoa(bin).replaceAll('+', '-').replaceAll('/', '_').replace(/=+$/, '');
}

async function hmac(secret: Uint8Array, text: string): Promise<ArrayBuffer> {
  const key = await crypto.subtle.importKey('raw', secret, { name: 'HMAC', hash: 'SHA-256' }, false, [
    'sign',
  ]);
  return crypto.subtle.sign('HMAC', key, encoder.encode(text));
}

/** Parses `{"kid":"base64 secret",...}` (the SD3_SIGNING_KEYS variable). */
export function parseSigningKeys(json: string): SigningKeys {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch {
    throw new Error('signing keys must be a JSON object of key id -> base64 secret');
  }
  const parsed = z.record(z.string().min(1), z.string().min(1)).safeParse(raw);
  if (!parsed.success || Object.keys(parsed.data).length === 0) {
    throw new Error('signing keys must be a non-empty JSON object of key id -> base64 secret');
  }
  const keys = new Map<string, Uint8Array>();
  for (const [kid, b64] of Object.entries(parsed.data)) {
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    if (bytes.length < 32) throw new Error(`signing key ${kid} must be at least 32 bytes`);
    keys.set(kid, bytes);
  }
  return keys;
}

export async function signEnvelope(payload: EnvelopePayload, secret: Uint8Array): Promise<SignedEnvelope> {
  const checked = EnvelopePayloadSchema.parse(payload);
  return { payload: checked, sig: base64url(await hmac(secret, canonicalJson(checked))) };
}

export function serializeEnvelope(envelope: SignedEnvelope): string {
  return canonicalJson(envelope);
}

/** Constant-time comparison of two ASCII strings. */
function timingSafeEqual(a: string, b: string): boolean {
  let diff = a.length ^ b.length;
  for (let i = 0; i < Math.max(a.length, b.length); i++)
    diff |= (a.charCodeAt(i) || 0) ^ (b.charCodeAt(i) || 0);
  return diff === 0;
}

/** Parses and verifies a message body; throws EnvelopeError. */
export async function verifyEnvelope(
  body: string,
  keys: SigningKeys,
  now = Date.now(),
): Promise<EnvelopePayload> {
  let raw: unknown;
  try {
    raw = JSON.parse(body);
  } catch {
    throw new EnvelopeError('envelope_invalid', 'message body is not JSON');
  }
  const outer = z.object({ payload: z.unknown(), sig: z.string() }).safeParse(raw);
  const jobIdGuess = (raw as { payload?: { jobId?: unknown } } | null)?.payload?.jobId;
  const jobId = typeof jobIdGuess === 'string' ? jobIdGuess : undefined;
  if (!outer.success) throw new EnvelopeError('envelope_invalid', 'message is not a signed envelope', jobId);
  const payload = EnvelopePayloadSchema.safeParse(outer.data.payload);
  if (!payload.success) throw new EnvelopeError('envelope_invalid', 'envelope payload is malformed', jobId);
  const secret = keys.get(payload.data.kid);
  if (!secret)
    throw new EnvelopeError('envelope_invalid', `unknown signing key id ${payload.data.kid}`, jobId);
  const expected = base64url(await hmac(secret, canonicalJson(payload.data)));
  if (!timingSafeEqual(expected, outer.data.sig)) {
    throw new EnvelopeError('envelope_invalid', 'envelope signature does not match', jobId);
  }
  if (now > payload.data.expiresAt) {
    throw new EnvelopeError(
      'envelope_expired',
      `envelope expired at ${new Date(payload.data.expiresAt).toISOString()}`,
      jobId,
    );
  }
  return payload.data;
}
