/**
 * Webhook target checks against server-side request forgery: the URL must be https, and every
 * address its host resolves to must be public (no private, loopback, link-local / metadata,
 * CGNAT, unspecified, multicast or reserved ranges, also when written as IPv4-mapped IPv6). The
 * caller then connects to the address checked here, so a DNS answer that changes between the
 * check and the connection (rebinding) cannot redirect the request.
 */

export interface ResolvedAddress {
  address: string;
  family: 4 | 6;
}

/** Resolves a host name to all its addresses (node:dns lookup with `all: true` in production). */
export type ResolveHost = (host: string) => Promise<ResolvedAddress[]>;

export type TargetCheck = { ok: true; url: URL; address: ResolvedAddress } | { ok: false; reason: string };

function parseIPv4(text: string): number[] | null {
  const parts = text.split('.');
  if (parts.length !== 4) return null;
  const out: number[] = [];
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p)) return null;
    const n = Number(p);
    if (n > 255) return null;
    out.push(n);
  }
  return out;
}

/** 8 groups of 16 bits, or null; accepts `::` compression and a dotted IPv4 tail. */
function parseIPv6(text: string): number[] | null {
  let s = text.toLowerCase();
  if (s.startsWith('[') && s.endsWith(']')) s = s.slice(1, -1);
  const zone = s.indexOf('%');
  if (zone >= 0) s = s.slice(0, zone);
  let tail: number[] = [];
  const lastColon = s.lastIndexOf(':');
  if (s.includes('.')) {
    const v4 = parseIPv4(s.slice(lastColon + 1));
    if (!v4) return null;
    tail = [(v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!];
    s = s.slice(0, lastColon + 1);
    if (s.endsWith(':') && !s.endsWith('::')) s = s.slice(0, -1);
  }
  const halves = s.split('::');
  if (halves.length > 2) return null;
  const group = (part: string) => (part === '' ? [] : part.split(':'));
  const head = group(halves[0]!);
  const rest = halves.length === 2 ? group(halves[1]!) : [];
  const parse = (g: string) => (/^[0-9a-f]{1,4}$/.test(g) ? Number.parseInt(g, 16) : Number.NaN);
  const h = head.map(parse);
  const r = rest.map(parse);
  if ([...h, ...r].some(Number.isNaN)) return null;
  const fill = 8 - h.length - r.length - tail.length;
  if (halves.length === 2 ? fill < 1 : fill !== 0) return null;
  return [...h, ...new Array<number>(halves.length === 2 ? fill : 0).fill(0), ...r, ...tail];
}

function forbiddenV4([a, b]: number[]): string | null {
  if (a === undefined || b === undefined) return 'not an address';
  if (a === 0) return 'unspecified/this-network';
  if (a === 10) return 'private';
  if (a === 127) return 'loopback';
  if (a === 169 && b === 254) return 'link-local/metadata';
  if (a === 172 && b >= 16 && b <= 31) return 'private';
  if (a === 192 && b === 168) return 'private';
  if (a === 100 && b >= 64 && b <= 127) return 'shared/CGNAT';
  if (a === 192 && b === 0) return 'reserved';
  if (a === 198 && (b === 18 || b === 19)) return 'benchmarking';
  if (a >= 224) return 'multicast/reserved';
  return null;
}

/** Why this literal address must not be a webhook target, or null when it is public. */
export function forbiddenAddressReason(address: string): string | null {
  const v4 = parseIPv4(address);
  if (v4) return forbiddenV4(v4);
  const v6 = parseIPv6(address);
  if (!v6) return 'not an IP address';
  const [g0, g1, g2, g3, g4, g5, g6, g7] = v6 as [
    number,
    number,
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const zeroHead = g0 === 0 && g1 === 0 && g2 === 0 && g3 === 0 && g4 === 0;
  if (zeroHead && g5 === 0 && g6 === 0 && g7 === 0) return 'unspecified';
  if (zeroHead && g5 === 0 && g6 === 0 && g7 === 1) return 'loopback';
  // IPv4-mapped (::ffff:a.b.c.d) and the deprecated IPv4-compatible (::a.b.c.d) forms.
  if (zeroHead && (g5 === 0xffff || g5 === 0)) {
    const reason = forbiddenV4([g6 >> 8, g6 & 0xff, g7 >> 8, g7 & 0xff]);
    return reason ? `IPv4-mapped ${reason}` : g5 === 0 ? 'IPv4-compatible' : null;
  }
  // NAT64 (64:ff9b::/96) carries an IPv4 address too.
  if (g0 === 0x64 && g1 === 0xff9b && g2 === 0 && g3 === 0 && g4 === 0 && g5 === 0) {
    const reason = forbiddenV4([g6 >> 8, g6 & 0xff, g7 >> 8, g7 & 0xff]);
    if (reason) return `NAT64 ${reason}`;
  }
  if ((g0 & 0xfe00) === 0xfc00) return 'unique-local (private)';
  if ((g0 & 0xffc0) === 0xfe80) return 'link-local';
  if ((g0 & 0xffc0) === 0xfec0) return 'site-local';
  if ((g0 & 0xff00) === 0xff00) return 'multicast';
  if (g0 === 0x2001 && g1 === 0x0db8) return 'documentation';
  return null;
}

export interface CheckOptions {
  resolve: ResolveHost;
  /** Local stack only: allows http:// to 127.0.0.1 (and nothing else private). */
  allowLocalHttp?: boolean;
}

const isLocalTarget = (host: string) => host === '127.0.0.1';

/** Checks a webhook URL and picks the address to connect to. */
export async function checkWebhookTarget(raw: string, options: CheckOptions): Promise<TargetCheck> {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return { ok: false, reason: 'not a valid URL' };
  }
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  const localAllowed = options.allowLocalHttp === true && isLocalTarget(host);
  if (url.protocol !== 'https:' && !(localAllowed && url.protocol === 'http:')) {
    return { ok: false, reason: `scheme ${url.protocol} refused: webhook URLs must be https` };
  }
  if (url.username || url.password) return { ok: false, reason: 'credentials in the URL are refused' };
  if (localAllowed) return { ok: true, url, address: { address: '127.0.0.1', family: 4 } };
  let addresses: ResolvedAddress[];
  if (parseIPv4(host)) addresses = [{ address: host, family: 4 }];
  else if (parseIPv6(host)) addresses = [{ address: host, family: 6 }];
  else {
    try {
      addresses = await options.resolve(host);
    } catch (err) {
      return { ok: false, reason: `could not resolve ${host}: ${(err as Error).message}` };
    }
  }
  if (addresses.length === 0) return { ok: false, reason: `${host} has no addresses` };
  // Every answer must be public: a host with one private address could be steered to it.
  for (const a of addresses) {
    const reason = forbiddenAddressReason(a.address);
    if (reason) return { ok: false, reason: `${host} resolves to ${a.address} (${reason}): refused` };
  }
  return { ok: true, url, address: addresses[0]! };
}
