/**
 * Shared parts of `npm run bench:load` and `npm run bench:soak`: the processes (test/bench/load-host.ts),
 * the mixed workload driven by autocannon in this process, per-route figures, resident memory
 * samples from /proc, and flag parsing.
 *
 * The mix, in requests per 100 (weights in MIX):
 *   POST /v1/generations          14 new tiny jobs (64x64, 1-2 steps)
 *                                  4 new jobs with an Idempotency-Key
 *                                  4 replays of an earlier Idempotency-Key (same body: same id back)
 *                                 12 bad requests (bad JSON, steps 0, width 63, no prompt): 400
 *   GET  /v1/generations/{id}     30 ids from earlier creates
 *                                  4 ids that do not exist: 404
 *   GET  /v1/generations?limit=N  12 N from 1 to 50
 *   GET  /v1/models               10
 *   GET  /v1/usage                 6 the last two days
 *   POST /v1/images/generations    4 a size the model refuses: 400 (a valid one waits for its image,
 *                                    up to 60 s, behind the backlog the creates build up)
 * An error is a 5xx, a socket error, a timeout, a status the route does not expect, or a replay
 * that returns another job; 429s are counted apart (the bench keys have the highest limits).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { ScanCommand, type ScanCommandOutput } from '@aws-sdk/client-dynamodb';
import { GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import autocannon from 'autocannon';
import { localClients } from '../../local/resources.js';
import type { HostInfo } from './load-host.js';

const HOST = fileURLToPath(new URL('./load-host.ts', import.meta.url));

// ---------- flags ----------

export interface FlagSpec {
  name: string;
  help: string;
  default: number;
  min: number;
  max: number;
}

/** Parses `--name N` / `--name=N` whole-number flags; a bad or unknown flag exits 2 with a message naming it. */
export function parseFlags(argv: string[], specs: FlagSpec[], usage: string): Record<string, number> {
  try {
    return parseFlagsOrThrow(argv, specs, usage);
  } catch (err) {
    console.error(err instanceof Error ? err.message : String(err));
    process.exit(2);
  }
}

function parseFlagsOrThrow(argv: string[], specs: FlagSpec[], usage: string): Record<string, number> {
  const out: Record<string, number> = Object.fromEntries(specs.map((s) => [s.name, s.default]));
  const helpText = () =>
    `${usage}\n${specs.map((s) => `  --${s.name} N`.padEnd(20) + `${s.help} (default ${s.default}, ${s.min}..${s.max})`).join('\n')}`;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--help' || arg === '-h') {
      console.log(helpText());
      process.exit(0);
    }
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(arg);
    const spec = m ? specs.find((s) => s.name === m[1]) : undefined;
    if (!m || !spec) throw new Error(`unknown argument "${arg}"\n${helpText()}`);
    const raw = m[2] ?? argv[++i];
    if (raw === undefined) throw new Error(`--${spec.name} needs a value`);
    const n = /^\d+$/.test(raw) ? Number(raw) : Number.NaN;
    if (!Number.isInteger(n) || n < spec.min || n > spec.max) {
      throw new Error(`--${spec.name} must be a whole number from ${spec.min} to ${spec.max} (got "${raw}")`);
    }
    out[spec.name] = n;
  }
  return out;
}

// ---------- processes ----------

export interface Host {
  info: HostInfo;
  child: ChildProcess;
  stop(): Promise<void>;
}

/** Starts test/bench/load-host.ts in `mode` and waits for its HostInfo line. */
export async function startHost(mode: 'stack' | 'bare', env: Record<string, string> = {}): Promise<Host> {
  const child = spawn(process.execPath, ['--import', 'tsx', HOST, mode], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stderr!.on('data', (c: Buffer) => {
    err += c.toString('utf8');
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const info = await new Promise<HostInfo>((resolve, reject) => {
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString('utf8');
      const line = out.split('\n').find((l) => l.startsWith('{"url"'));
      if (line) resolve(JSON.parse(line) as HostInfo);
    });
    void exited.then((code) => reject(new Error(`load host (${mode}) exited with ${code}:\n${err}${out}`)));
  });
  return {
    info,
    child,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      await exited;
    },
  };
}

// ---------- memory ----------

/** Resident set size of a process in MiB, from /proc/<pid>/status (Linux). */
export function rssMiB(pid: number): number {
  let status: string;
  try {
    status = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch (e) {
    throw new Error(
      `cannot read /proc/${pid}/status (the memory samples need Linux and a live process): ${String(e)}`,
    );
  }
  const m = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status);
  if (!m) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(m[1]) / 1024;
}

/** CPU time (user + system) a process has used, in seconds, from /proc/<pid>/stat. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name, which is in parentheses and may hold spaces.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // utime and stime are fields 14 and 15 of stat (11 and 12 here), in clock ticks (100 per second on Linux).
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

export interface RssSample {
  atS: number;
  mib: Record<string, number>;
  cpuS: Record<string, number>;
}

/** Samples the named processes every `everyMs` from now; `stop` returns the samples (one taken then). */
export function sampleRss(pids: Record<string, number>, everyMs: number) {
  const t0 = Date.now();
  const samples: RssSample[] = [];
  const take = () => {
    const mib: Record<string, number> = {};
    const cpuS: Record<string, number> = {};
    for (const [name, pid] of Object.entries(pids)) {
      mib[name] = rssMiB(pid);
      cpuS[name] = cpuSeconds(pid);
    }
    const own = process.cpuUsage();
    cpuS['load generator'] = (own.user + own.system) / 1e6;
    samples.push({ atS: (Date.now() - t0) / 1000, mib, cpuS });
  };
  take();
  const timer = setInterval(take, everyMs);
  return {
    samples,
    stop(): RssSample[] {
      clearInterval(timer);
      take();
      return samples;
    },
  };
}

// ---------- the mix ----------

export type RouteName =
  | 'create'
  | 'create_idem'
  | 'replay'
  | 'create_bad'
  | 'get'
  | 'get_missing'
  | 'list'
  | 'models'
  | 'usage'
  | 'images_bad';

interface Built {
  method: 'GET' | 'POST';
  path: string;
  body?: string;
  headers?: Record<string, string>;
  /** Counted as this route instead (a replay with nothing to replay yet is a first use). */
  as?: RouteName;
  /** Idempotency bookkeeping for the response. */
  idem?: { key: string; body: string; expectId?: string };
}

interface RouteSpec {
  label: string;
  weight: number;
  expected: readonly number[];
}

export const MIX: Record<RouteName, RouteSpec> = {
  create: { label: 'POST /v1/generations', weight: 14, expected: [202] },
  create_idem: { label: 'POST /v1/generations (Idempotency-Key)', weight: 4, expected: [202] },
  // 200 once the job has finished.
  replay: { label: 'POST /v1/generations (replay)', weight: 4, expected: [200, 202] },
  create_bad: { label: 'POST /v1/generations (bad)', weight: 12, expected: [400] },
  get: { label: 'GET /v1/generations/{id}', weight: 30, expected: [200] },
  get_missing: { label: 'GET /v1/generations/{unknown}', weight: 4, expected: [404] },
  list: { label: 'GET /v1/generations?limit=N', weight: 12, expected: [200] },
  models: { label: 'GET /v1/models', weight: 10, expected: [200] },
  usage: { label: 'GET /v1/usage', weight: 6, expected: [200] },
  images_bad: { label: 'POST /v1/images/generations (bad size)', weight: 4, expected: [400] },
};

const ROUTES = Object.keys(MIX) as RouteName[];
const TOTAL_WEIGHT = ROUTES.reduce((s, r) => s + MIX[r].weight, 0);

const BAD_BODIES = [
  '{"prompt": "unterminated',
  JSON.stringify({ prompt: 'a fox', steps: 0 }),
  JSON.stringify({ prompt: 'a fox', width: 63, height: 64 }),
  JSON.stringify({ width: 64, height: 64 }),
  JSON.stringify({ prompt: 'a fox', n: 1000 }),
];

const pick = <T>(items: readonly T[]): T => items[Math.floor(Math.random() * items.length)]!;

function pickRoute(): RouteName {
  let r = Math.random() * TOTAL_WEIGHT;
  for (const name of ROUTES) {
    r -= MIX[name].weight;
    if (r < 0) return name;
  }
  return 'get';
}

const jobBody = () =>
  JSON.stringify({
    prompt: `load test ${Math.floor(Math.random() * 1e6)}`,
    width: 64,
    height: 64,
    steps: 1 + Math.floor(Math.random() * 2),
  });

/** Ids and Idempotency-Keys the run has seen, bounded so the generator's own memory stays flat. */
export class Pools {
  readonly ids: string[] = [];
  readonly idem: { key: string; body: string; id: string }[] = [];
  private nextId = 0;
  private nextIdem = 0;
  addId(id: string): void {
    if (this.ids.length < 5000) this.ids.push(id);
    else this.ids[this.nextId++ % 5000] = id;
  }
  addIdem(entry: { key: string; body: string; id: string }): void {
    if (this.idem.length < 1000) this.idem.push(entry);
    else this.idem[this.nextIdem++ % 1000] = entry;
  }
}

function usagePath(): string {
  const day = 86_400_000;
  const today = Math.floor(Date.now() / day) * day;
  const iso = (ms: number) => new Date(ms).toISOString().slice(0, 10);
  return `/v1/usage?from=${iso(today - day)}&to=${iso(today + day)}`;
}

function build(route: RouteName, pools: Pools): Built {
  switch (route) {
    case 'create':
      return { method: 'POST', path: '/v1/generations', body: jobBody() };
    case 'create_idem': {
      const body = jobBody();
      const key = `bench-${randomUUID()}`;
      return {
        method: 'POST',
        path: '/v1/generations',
        body,
        headers: { 'idempotency-key': key },
        idem: { key, body },
      };
    }
    case 'replay': {
      const prev = pools.idem.length > 0 ? pick(pools.idem) : undefined;
      if (!prev) return { ...build('create_idem', pools), as: 'create_idem' };
      return {
        method: 'POST',
        path: '/v1/generations',
        body: prev.body,
        headers: { 'idempotency-key': prev.key },
        idem: { key: prev.key, body: prev.body, expectId: prev.id },
      };
    }
    case 'create_bad':
      return { method: 'POST', path: '/v1/generations', body: pick(BAD_BODIES) };
    case 'get':
      return {
        method: 'GET',
        path: `/v1/generations/${pools.ids.length > 0 ? pick(pools.ids) : 'gen_missing'}`,
      };
    case 'get_missing':
      return { method: 'GET', path: `/v1/generations/nope-${Math.floor(Math.random() * 1e9)}` };
    case 'list':
      return { method: 'GET', path: `/v1/generations?limit=${1 + Math.floor(Math.random() * 50)}` };
    case 'models':
      return { method: 'GET', path: '/v1/models' };
    case 'usage':
      return { method: 'GET', path: usagePath() };
    case 'images_bad':
      return {
        method: 'POST',
        path: '/v1/images/generations',
        body: JSON.stringify({ prompt: 'a fox', size: '63x63' }),
      };
  }
}

export interface RouteStats {
  requests: number;
  latencies: number[];
  statuses: Record<number, number>;
  errors: number;
  throttled: number;
}

export interface MixResult {
  durationS: number;
  routes: Record<RouteName, RouteStats>;
  /** Socket errors and timeouts (autocannon does not say which route they hit). */
  socketErrors: number;
  timeouts: number;
  /** Sample of unexpected answers, for the report. */
  unexpected: string[];
  totalRequests: number;
}

interface Ctx {
  route?: RouteName;
  idem?: Built['idem'];
  ok?: boolean;
  throttled?: boolean;
}

/**
 * Drives the mix at `url` for `durationS` seconds with `connections` keep-alive connections
 * (and at most `rate` requests per second overall when given).
 */
export async function runMix(
  target: { url: string; tokens: string[]; replayHeader: boolean },
  options: { durationS: number; connections: number; rate?: number },
  pools: Pools = new Pools(),
): Promise<MixResult> {
  const routes = {} as Record<RouteName, RouteStats>;
  for (const r of ROUTES) routes[r] = { requests: 0, latencies: [], statuses: {}, errors: 0, throttled: 0 };
  const unexpected: string[] = [];
  const note = (text: string) => {
    if (unexpected.length < 20) unexpected.push(text);
  };
  const started = Date.now();
  let done: (result: autocannon.Result) => void = () => undefined;
  let failed: (err: unknown) => void = () => undefined;
  const finished = new Promise<autocannon.Result>((resolve, reject) => {
    done = resolve;
    failed = reject;
  });
  const instance = autocannon(
    {
      url: target.url,
      connections: options.connections,
      duration: options.durationS,
      timeout: 10,
      ...(options.rate ? { overallRate: options.rate } : {}),
      requests: [
        {
          setupRequest: (req, context) => {
            const ctx = context as Ctx;
            const route = pickRoute();
            const b = build(route, pools);
            ctx.route = b.as ?? route;
            ctx.idem = b.idem;
            return {
              ...req,
              method: b.method,
              path: b.path,
              headers: {
                authorization: `Bearer ${pick(target.tokens)}`,
                ...(b.body !== undefined ? { 'content-type': 'application/json' } : {}),
                ...b.headers,
              },
              ...(b.body !== undefined ? { body: b.body } : {}),
            };
          },
          onResponse: (status, body, context, headers) => {
            const ctx = context as Ctx;
            const route = ctx.route!;
            ctx.throttled = status === 429;
            ctx.ok = MIX[route].expected.includes(status);
            if (!ctx.ok) {
              if (!ctx.throttled) note(`${MIX[route].label}: ${status} ${body.slice(0, 200)}`);
              return;
            }
            if (route === 'create' || route === 'create_idem' || route === 'replay') {
              let id: string;
              try {
                id = (JSON.parse(body) as { id: string }).id;
              } catch {
                ctx.ok = false;
                note(`${MIX[route].label}: ${status} with a body that is not JSON: ${body.slice(0, 200)}`);
                return;
              }
              if (route === 'create') pools.addId(id);
              else if (route === 'create_idem' && ctx.idem) {
                pools.addId(id);
                pools.addIdem({ key: ctx.idem.key, body: ctx.idem.body, id });
              } else if (route === 'replay' && target.replayHeader) {
                const replayed = headers?.['idempotent-replayed'] === 'true';
                if (!replayed || (ctx.idem?.expectId !== undefined && id !== ctx.idem.expectId)) {
                  ctx.ok = false;
                  note(
                    `replay of ${ctx.idem?.key}: got ${id} (replayed header ${String(replayed)}), expected ${ctx.idem?.expectId}`,
                  );
                }
              }
            }
          },
        },
      ],
    },
    (err: unknown, result: autocannon.Result) => (err ? failed(err) : done(result)),
  );
  instance.on('response', (client, status, _bytes, responseTime) => {
    // One request in flight per connection (no pipelining), so the iterator's context is this response's.
    const ctx = (client as unknown as { requestIterator: { context: Ctx } }).requestIterator.context;
    const stats = routes[ctx.route!];
    stats.requests++;
    stats.latencies.push(responseTime);
    stats.statuses[status] = (stats.statuses[status] ?? 0) + 1;
    if (ctx.throttled) stats.throttled++;
    else if (!ctx.ok) stats.errors++;
  });
  const result = await finished;
  const durationS = (Date.now() - started) / 1000;
  return {
    durationS,
    routes,
    socketErrors: result.errors - result.timeouts,
    timeouts: result.timeouts,
    unexpected,
    totalRequests: ROUTES.reduce((s, r) => s + routes[r].requests, 0),
  };
}

/** Several runs of the mix on one target as one result (the slices of an interleaved run). */
export function mergeMix(results: MixResult[]): MixResult {
  const routes = {} as Record<RouteName, RouteStats>;
  for (const r of ROUTES) {
    const stats: RouteStats = { requests: 0, latencies: [], statuses: {}, errors: 0, throttled: 0 };
    for (const res of results) {
      const s = res.routes[r];
      stats.requests += s.requests;
      for (const v of s.latencies) stats.latencies.push(v);
      for (const [code, n] of Object.entries(s.statuses)) {
        stats.statuses[Number(code)] = (stats.statuses[Number(code)] ?? 0) + n;
      }
      stats.errors += s.errors;
      stats.throttled += s.throttled;
    }
    routes[r] = stats;
  }
  const sum = (f: (m: MixResult) => number) => results.reduce((a, m) => a + f(m), 0);
  return {
    durationS: sum((m) => m.durationS),
    routes,
    socketErrors: sum((m) => m.socketErrors),
    timeouts: sum((m) => m.timeouts),
    unexpected: results.flatMap((m) => m.unexpected).slice(0, 20),
    totalRequests: sum((m) => m.totalRequests),
  };
}

/** A few creates (plain and with Idempotency-Keys) so GETs and replays have targets from the start. */
export async function warmUp(target: { url: string; tokens: string[] }, pools: Pools, n = 10): Promise<void> {
  for (let i = 0; i < n; i++) {
    const body = jobBody();
    const key = `bench-warm-${randomUUID()}`;
    const res = await fetch(`${target.url}/v1/generations`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${target.tokens[0]}`,
        'content-type': 'application/json',
        'idempotency-key': key,
      },
      body,
    });
    if (res.status !== 202) throw new Error(`warm-up create answered ${res.status}: ${await res.text()}`);
    const { id } = (await res.json()) as { id: string };
    pools.addId(id);
    pools.addIdem({ key, body, id });
  }
}

// ---------- the stack's state ----------

export interface QueueState {
  jobsByStatus: Record<string, number>;
  queueDepth: number;
  inFlight: number;
}

/** Jobs per status (a scan of the jobs table) and the jobs queue's depth, from the emulators. */
export async function queueState(info: HostInfo): Promise<QueueState> {
  const { dynamodb, sqs, s3 } = localClients({
    dynamodbEndpoint: info.dynamodbEndpoint,
    sqsEndpoint: info.sqsEndpoint,
    s3Endpoint: info.sqsEndpoint,
  });
  try {
    const jobsByStatus: Record<string, number> = {};
    let start: ScanCommandOutput['LastEvaluatedKey'];
    do {
      const page: ScanCommandOutput = await dynamodb.send(
        new ScanCommand({
          TableName: info.jobsTable,
          ProjectionExpression: '#s',
          ExpressionAttributeNames: { '#s': 'status' },
          ...(start ? { ExclusiveStartKey: start } : {}),
        }),
      );
      for (const item of page.Items ?? []) {
        const s = item['status']?.S ?? 'unknown';
        jobsByStatus[s] = (jobsByStatus[s] ?? 0) + 1;
      }
      start = page.LastEvaluatedKey;
    } while (start);
    const attrs = await sqs.send(
      new GetQueueAttributesCommand({
        QueueUrl: info.jobsQueueUrl,
        AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
      }),
    );
    return {
      jobsByStatus,
      queueDepth: Number(attrs.Attributes?.ApproximateNumberOfMessages ?? 0),
      inFlight: Number(attrs.Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0),
    };
  } finally {
    dynamodb.destroy();
    sqs.destroy();
    s3.destroy();
  }
}

// ---------- tables ----------

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

const ms = (v: number) => (Number.isNaN(v) ? '-' : `${v.toFixed(0)} ms`);

/** The per-route table; with `baseline`, req/s ratios to it per route and overall. */
export function routeTable(r: MixResult, baseline?: MixResult): string {
  const head = baseline
    ? '| route | requests | req/s | p50 | p99 | max | errors | 429 | statuses | bare Hono req/s | ratio |\n|---|---|---|---|---|---|---|---|---|---|---|'
    : '| route | requests | req/s | p50 | p99 | max | errors | 429 | statuses |\n|---|---|---|---|---|---|---|---|---|';
  const rows: string[] = [head];
  const all: number[] = [];
  let errors = 0;
  let throttled = 0;
  for (const name of ROUTES) {
    const s = r.routes[name];
    const sorted = [...s.latencies].sort((a, b) => a - b);
    for (const v of s.latencies) all.push(v);
    errors += s.errors;
    throttled += s.throttled;
    const rps = s.requests / r.durationS;
    const statuses = Object.entries(s.statuses)
      .map(([code, n]) => `${code}×${n}`)
      .join(' ');
    let row = `| ${MIX[name].label} | ${s.requests} | ${rps.toFixed(1)} | ${ms(percentile(sorted, 50))} | ${ms(percentile(sorted, 99))} | ${ms(sorted.at(-1) ?? Number.NaN)} | ${s.errors} | ${s.throttled} | ${statuses} |`;
    if (baseline) {
      const b = baseline.routes[name].requests / baseline.durationS;
      row += ` ${b.toFixed(1)} | ${(rps / b).toFixed(3)} |`;
    }
    rows.push(row);
  }
  all.sort((a, b) => a - b);
  const rps = r.totalRequests / r.durationS;
  let total = `| **all** | ${r.totalRequests} | ${rps.toFixed(1)} | ${ms(percentile(all, 50))} | ${ms(percentile(all, 99))} | ${ms(all.at(-1) ?? Number.NaN)} | ${errors + r.socketErrors + r.timeouts} | ${throttled} | socket errors ${r.socketErrors}, timeouts ${r.timeouts} |`;
  if (baseline) {
    const b = baseline.totalRequests / baseline.durationS;
    total += ` ${b.toFixed(1)} | ${(rps / b).toFixed(3)} |`;
  }
  rows.push(total);
  return rows.join('\n');
}

export function totalErrors(r: MixResult): number {
  return ROUTES.reduce((s, n) => s + r.routes[n].errors, 0) + r.socketErrors + r.timeouts;
}

export function totalThrottled(r: MixResult): number {
  return ROUTES.reduce((s, n) => s + r.routes[n].throttled, 0);
}

export function rssTable(samples: RssSample[]): string {
  const names = Object.keys(samples[0]?.mib ?? {});
  const rows = [
    `| t (s) | ${names.map((n) => `${n} RSS (MiB)`).join(' | ')} |`,
    `|---|${names.map(() => '---|').join('')}`,
  ];
  for (const s of samples)
    rows.push(`| ${s.atS.toFixed(0)} | ${names.map((n) => s.mib[n]!.toFixed(1)).join(' | ')} |`);
  return rows.join('\n');
}

/** The machine's cores and load average: other work on it competes with the stack for CPU. */
export function machineLine(): string {
  const [one, five] = loadavg();
  return `machine: ${cpus().length} cores, load average ${one!.toFixed(2)} (1 min), ${five!.toFixed(2)} (5 min)`;
}

/** Average CPU use of each sampled process between the first and the last sample (100% = one core). */
export function cpuLine(samples: RssSample[]): string {
  const first = samples[0];
  const last = samples.at(-1);
  if (!first || !last || last.atS <= first.atS) return 'CPU: -';
  const span = last.atS - first.atS;
  const parts = Object.keys(first.cpuS).map(
    (n) => `${n} ${((100 * (last.cpuS[n]! - first.cpuS[n]!)) / span).toFixed(0)}%`,
  );
  return `CPU over the run (100% = one core, ${cpus().length} cores): ${parts.join(', ')}`;
}

export function jobsLine(q: QueueState): string {
  const by = Object.entries(q.jobsByStatus)
    .sort()
    .map(([s, n]) => `${s} ${n}`)
    .join(', ');
  return `jobs by status: ${by || 'none'}; jobs queue: ${q.queueDepth} waiting, ${q.inFlight} in flight`;
}
