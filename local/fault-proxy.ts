/**
 * A fault-injecting HTTP proxy in front of dynalite: the DynamoDB wire protocol is passed through
 * untouched, except that a configurable share of requests (optionally only some operations, by
 * X-Amz-Target) is answered with an error the real service returns: ThrottlingException,
 * ProvisionedThroughputExceededException (400), InternalServerError (500) or a reset connection.
 * Faults are injected either before the request reaches the table (the write did not happen) or
 * after it was applied (the write happened but its answer is lost: an ambiguous failure).
 * The SDK under test sees exactly what it would see from AWS; nothing is mocked.
 */
import { createServer, type IncomingMessage, request, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export type DynamoFault = 'throttling' | 'provisioned' | 'internal' | 'reset';

export interface FaultRule {
  /** Share of matching requests that fail, 0..1. */
  rate: number;
  /** Operations (the part of X-Amz-Target after the dot, e.g. UpdateItem); absent = all. */
  operations?: string[];
  /** Faults to draw from, uniformly; default all four. */
  faults?: DynamoFault[];
  /**
   * After a drawn fault, this many following requests of the same operation also fail (same
   * fault), which outlasts the SDK's own retries (3 attempts by default). Default 1.
   */
  burst?: number;
  /** 'before' (default): the request never reaches the table. 'after': it is applied first. */
  when?: 'before' | 'after';
}

export interface FaultStats {
  requests: number;
  injected: number;
  byFault: Record<DynamoFault, number>;
  byOperation: Record<string, number>;
  /** Faults injected after the request was applied. */
  ambiguous: number;
}

export interface FaultProxy {
  /** The endpoint to give the client under test. */
  readonly endpoint: string;
  /** Replaces the rule; null stops injecting. */
  setRule(rule: FaultRule | null): void;
  stats(): FaultStats;
  close(): Promise<void>;
}

const ALL_FAULTS: DynamoFault[] = ['throttling', 'provisioned', 'internal', 'reset'];
const ERROR_PREFIX = 'com.amazonaws.dynamodb.v20120810#';

/** The error bodies DynamoDB sends (JSON 1.0 protocol), as the SDK parses them. */
const ERRORS: Record<Exclude<DynamoFault, 'reset'>, { status: number; type: string; message: string }> = {
  throttling: {
    status: 400,
    type: 'ThrottlingException',
    message: 'Rate of requests exceeds the allowed throughput.',
  },
  provisioned: {
    status: 400,
    type: 'ProvisionedThroughputExceededException',
    message:
      'The level of configured provisioned throughput for the table was exceeded. Consider increasing your provisioning level with the UpdateTable API.',
  },
  internal: { status: 500, type: 'InternalServerError', message: 'Internal server error' },
};

/** Deterministic draws (mulberry32) so a failing run can be replayed with its seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function checkRule(rule: FaultRule): void {
  if (!(rule.rate >= 0 && rule.rate <= 1))
    throw new Error(`fault rate must be within 0..1, got ${rule.rate}`);
  if (rule.burst !== undefined && !(Number.isInteger(rule.burst) && rule.burst >= 1)) {
    throw new Error(`fault burst must be a whole number >= 1, got ${rule.burst}`);
  }
  for (const f of rule.faults ?? []) {
    if (!ALL_FAULTS.includes(f))
      throw new Error(`unknown fault ${JSON.stringify(f)}; one of ${ALL_FAULTS.join(', ')}`);
  }
  if (rule.faults?.length === 0) throw new Error('faults must name at least one fault');
}

export async function startDynamoFaultProxy(
  target: string,
  options: { seed?: number; rule?: FaultRule } = {},
): Promise<FaultProxy> {
  const upstream = new URL(target);
  const random = prng(options.seed ?? 1);
  let rule: FaultRule | null = null;
  if (options.rule) {
    checkRule(options.rule);
    rule = options.rule;
  }
  /** Remaining burst per operation: the fault to repeat and how many more times. */
  const bursts = new Map<string, { fault: DynamoFault; left: number }>();
  const stats: FaultStats = {
    requests: 0,
    injected: 0,
    byFault: { throttling: 0, provisioned: 0, internal: 0, reset: 0 },
    byOperation: {},
    ambiguous: 0,
  };
  const sockets = new Set<Socket>();

  const draw = (operation: string): DynamoFault | null => {
    if (!rule || (rule.operations && !rule.operations.includes(operation))) return null;
    const pending = bursts.get(operation);
    if (pending && pending.left > 0) {
      pending.left--;
      return pending.fault;
    }
    if (random() >= rule.rate) return null;
    const faults = rule.faults ?? ALL_FAULTS;
    const fault = faults[Math.floor(random() * faults.length)]!;
    if ((rule.burst ?? 1) > 1) bursts.set(operation, { fault, left: (rule.burst ?? 1) - 1 });
    return fault;
  };

  const answerFault = (req: IncomingMessage, res: ServerResponse, fault: DynamoFault) => {
    if (fault === 'reset') {
      req.socket.resetAndDestroy();
      return;
    }
    const e = ERRORS[fault];
    const body = JSON.stringify({ __type: `${ERROR_PREFIX}${e.type}`, message: e.message });
    res.writeHead(e.status, {
      'content-type': 'application/x-amz-json-1.0',
      'content-length': Buffer.byteLength(body),
      'x-amzn-requestid': `fault-${stats.requests}`,
    });
    res.end(body);
  };

  const forward = (req: IncomingMessage, body: Buffer) =>
    new Promise<{ status: number; headers: IncomingMessage['headers']; body: Buffer }>((resolve, reject) => {
      const out = request(
        {
          host: upstream.hostname,
          port: upstream.port,
          method: req.method,
          path: req.url,
          headers: { ...req.headers, host: upstream.host },
        },
        (res) => {
          readBody(res).then(
            (b) => resolve({ status: res.statusCode ?? 502, headers: res.headers, body: b }),
            reject,
          );
        },
      );
      out.on('error', reject);
      out.end(body);
    });

  const server = createServer((req, res) => {
    void (async () => {
      const body = await readBody(req);
      stats.requests++;
      const target = String(req.headers['x-amz-target'] ?? '');
      const operation = target.slice(target.indexOf('.') + 1);
      const fault = draw(operation);
      const after = rule?.when === 'after';
      if (fault) {
        stats.injected++;
        stats.byFault[fault]++;
        stats.byOperation[operation] = (stats.byOperation[operation] ?? 0) + 1;
      }
      if (fault && !after) return answerFault(req, res, fault);
      const got = await forward(req, body);
      if (fault) {
        stats.ambiguous++;
        return answerFault(req, res, fault);
      }
      res.writeHead(got.status, got.headers);
      res.end(got.body);
    })().catch(() => {
      // The upstream is gone (stack stopping): a reset is what a client would see.
      req.socket.destroy();
    });
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    setRule(next) {
      if (next) checkRule(next);
      rule = next;
      bursts.clear();
    },
    stats: () => structuredClone(stats),
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
