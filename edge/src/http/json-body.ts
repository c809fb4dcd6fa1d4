/**
 * Reads a JSON request body: application/json only (415), at most `maxBytes` (413, checked on the
 * declared length and again while streaming), valid UTF-8 and JSON (400 naming `body`).
 */
import { ApiError } from '../errors/api-error.js';

export function isJsonContentType(value: string | undefined): boolean {
  if (!value) return false;
  const type = value.split(';', 1)[0]!.trim().toLowerCase();
  return type === 'application/json' || /^application\/[a-z0-9.+-]+\+json$/.test(type);
}

const tooLarge = (maxBytes: number) =>
  new ApiError('payload_too_large', `the request body must be at most ${maxBytes} bytes`, {
    errors: [{ field: 'body', message: `must be at most ${maxBytes} bytes` }],
  });

async function readLimited(req: Request, maxBytes: number): Promise<Uint8Array> {
  const declared = req.headers.get('content-length');
  if (declared !== null && /^\d+$/.test(declared) && Number(declared) > maxBytes) throw tooLarge(maxBytes);
  if (!req.body) return new Uint8Array(0);
  const reader = req.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    let chunk: Awaited<ReturnType<typeof reader.read>>;
    try {
      chunk = await reader.read();
    } catch {
      // The client went away or broke the framing mid-body: its fault, not a server error.
      throw ApiError.field('body', 'was cut off before it was complete');
    }
    const { done, value } = chunk;
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      await reader.cancel().catch(() => {});
      throw tooLarge(maxBytes);
    }
    chunks.push(value);
  }
  const out = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return out;
}

const unsupported = () =>
  new ApiError('unsupported_media_type', 'send the body as application/json', {
    errors: [{ field: 'Content-Type', message: 'must be application/json' }],
  });

/**
 * For routes whose body may be left out: an empty (or blank) body is `undefined` whatever its
 * content type; anything else is read as readJsonBody does, with the same size limit.
 */
export async function readOptionalJsonBody(req: Request, maxBytes: number): Promise<unknown> {
  const bytes = await readLimited(req, maxBytes);
  if (bytes.every((b) => b === 0x20 || b === 0x09 || b === 0x0a || b === 0x0d)) return undefined;
  if (!isJsonContentType(req.headers.get('content-type') ?? undefined)) throw unsupported();
  return parseJson(bytes);
}

export async function readJsonBody(req: Request, maxBytes: number): Promise<unknown> {
  if (!isJsonContentType(req.headers.get('content-type') ?? undefined)) throw unsupported();
  return parseJson(await readLimited(req, maxBytes));
}

function parseJson(bytes: Uint8Array): unknown {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw ApiError.field('body', 'is not valid UTF-8');
  }
  if (text.trim() === '') throw ApiError.field('body', 'is empty; send a JSON object');
  try {
    return JSON.parse(text);
  } catch (err) {
    throw ApiError.field(
      'body',
      `is not valid JSON (${err instanceof SyntaxError ? err.message : 'parse error'})`,
    );
  }
}
