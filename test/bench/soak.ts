/**
 * `npm run bench:soak [-- --duration 300 --rate 40]`: the mixed workload of load-lib.ts at a steady
 * rate against the local stack for minutes, sampling the resident memory (VmRSS) of the edge and
 * the runner processes every 10 s. Target: each grows less than 10% between minute 1 and the end
 * (medians of the samples in the second minute and in the last minute; see growth()).
 * The emulators' RSS is shown too; it grows by design (their data is in memory).
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EDGE_PROCESS_ENV } from '../../local/edge-process.js';
import {
  cpuLine,
  jobsLine,
  machineLine,
  Pools,
  parseFlags,
  queueState,
  type RssSample,
  routeTable,
  rssTable,
  runMix,
  sampleRss,
  startHost,
  totalErrors,
  totalThrottled,
  warmUp,
} from './load-lib.js';

const TARGET_GROWTH = 0.1;
const BASELINE_S = 60;

const flags = parseFlags(
  process.argv.slice(2),
  [
    {
      name: 'duration',
      help: 'seconds of load (the baseline is the sample at 60 s)',
      default: 300,
      min: 120,
      max: 86_400,
    },
    { name: 'rate', help: 'requests per second, overall', default: 40, min: 1, max: 100_000 },
    {
      name: 'forced-gc',
      help: '1: the edge collects garbage every 10 s (shows its live heap, but also steadies its RSS); 0: plain RSS',
      default: 0,
      min: 0,
      max: 1,
    },
    { name: 'connections', help: 'keep-alive connections', default: 8, min: 1, max: 1000 },
    {
      name: 'keys',
      help: 'API keys of the bench tenant the requests spread over',
      default: 8,
      min: 1,
      max: 100,
    },
  ],
  'usage: npm run bench:soak -- [flags]',
);

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

/**
 * Growth of `name`'s RSS from minute 1 to the end. A single sample swings with the garbage
 * collector, so the verdict compares the median of the samples in [60 s, 120 s) with the median of
 * the last minute's; the single samples and the least-squares slope after minute 1 are shown too.
 */
function growth(samples: RssSample[], name: string) {
  const end = samples.at(-1)!.atS;
  const inMinute1 = samples.filter((s) => s.atS >= BASELINE_S && s.atS < 2 * BASELINE_S);
  const lastMinute = samples.filter((s) => s.atS >= end - 60);
  const from = median(inMinute1.map((s) => s.mib[name]!));
  const to = median(lastMinute.map((s) => s.mib[name]!));
  const after = samples.filter((s) => s.atS >= BASELINE_S);
  const mx = after.reduce((a, s) => a + s.atS, 0) / after.length;
  const my = after.reduce((a, s) => a + s.mib[name]!, 0) / after.length;
  const slope =
    after.reduce((a, s) => a + (s.atS - mx) * (s.mib[name]! - my), 0) /
    after.reduce((a, s) => a + (s.atS - mx) ** 2, 0);
  return {
    from,
    to,
    ratio: (to - from) / from,
    pointFrom: inMinute1[0]!.mib[name]!,
    pointTo: samples.at(-1)!.mib[name]!,
    mibPerMinute: slope * 60,
  };
}

/** The edge's own view of its memory (process.memoryUsage(), logged by local/edge-process.ts). */
function heapTable(jsonl: string): string {
  const mib = (b: number) => (b / 1048576).toFixed(1);
  const rows = jsonl
    .trim()
    .split('\n')
    .map(
      (l) =>
        JSON.parse(l) as {
          atS: number;
          rss: number;
          heapUsed: number;
          heapTotal: number;
          external: number;
          arrayBuffers: number;
          liveHeap: number | null;
        },
    );
  return [
    "\n## The edge's memory from inside (MiB): V8 heap in use / live after a full GC / reserved, external, array buffers\n",
    '| t (s) | heap used | live heap | heap total | external | array buffers |',
    '|---|---|---|---|---|---|',
    ...rows.map(
      (r) =>
        `| ${r.atS.toFixed(0)} | ${mib(r.heapUsed)} | ${r.liveHeap === null ? '-' : mib(r.liveHeap)} | ${mib(r.heapTotal)} | ${mib(r.external)} | ${mib(r.arrayBuffers)} |`,
    ),
  ].join('\n');
}

console.log(
  `# Soak: mixed workload at ${flags['rate']} req/s for ${flags['duration']} s, ${flags['connections']} connections (autocannon)\n`,
);
console.log(`before: ${machineLine()}`);
const memoryDir = await mkdtemp(join(tmpdir(), 'sd3-soak-'));
const memoryLog = join(memoryDir, 'edge-memory.jsonl');
const stack = await startHost('stack', {
  BENCH_KEYS: String(flags['keys']),
  [EDGE_PROCESS_ENV.MEMORY_LOG]: memoryLog,
  [EDGE_PROCESS_ENV.MEMORY_GC]: String(flags['forced-gc'] === 1),
});
try {
  const pids: Record<string, number> = { edge: stack.info.pids.edge, emulators: stack.info.pids.host };
  if (stack.info.pids.runner === null) throw new Error('the stack has no runner process');
  pids['runner'] = stack.info.pids.runner;
  const pools = new Pools();
  await warmUp(stack.info, pools);
  const before = await queueState(stack.info);
  const rss = sampleRss(pids, 10_000);
  const result = await runMix(
    { url: stack.info.url, tokens: stack.info.tokens, replayHeader: true },
    { durationS: flags['duration']!, connections: flags['connections']!, rate: flags['rate']! },
    pools,
  );
  const samples = rss.stop();
  const after = await queueState(stack.info);

  console.log('## Per route\n');
  console.log(routeTable(result));
  console.log('\n## Resident memory (VmRSS), sampled every 10 s\n');
  console.log(rssTable(samples));
  console.log(heapTable(await readFile(memoryLog, 'utf8')));
  console.log(`\n${cpuLine(samples)}`);
  console.log(`after the run: ${machineLine()}`);
  console.log(`\n## The stack after the run`);
  console.log(`- ${jobsLine(after)}`);
  console.log(
    `- jobs the runner finished during the run: ${(after.jobsByStatus['succeeded'] ?? 0) - (before.jobsByStatus['succeeded'] ?? 0)} succeeded`,
  );
  if (result.unexpected.length > 0) {
    console.log(`\nunexpected answers (first ${result.unexpected.length}):`);
    for (const u of result.unexpected) console.log(`- ${u}`);
  }
  console.log('');
  let pass = true;
  for (const name of ['edge', 'runner']) {
    const g = growth(samples, name);
    const ok = g.ratio < TARGET_GROWTH;
    pass &&= ok;
    console.log(
      `${ok ? 'PASS' : 'FAIL'}: ${name} RSS ${g.from.toFixed(1)} MiB in minute 1 -> ${g.to.toFixed(1)} MiB in the last minute (medians): ${(100 * g.ratio).toFixed(1)}% (target < ${100 * TARGET_GROWTH}%); single samples ${g.pointFrom.toFixed(1)} -> ${g.pointTo.toFixed(1)} MiB; trend after minute 1 ${g.mibPerMinute.toFixed(2)} MiB/min`,
    );
  }
  const errors = totalErrors(result);
  pass &&= errors === 0;
  console.log(
    `${errors === 0 ? 'PASS' : 'FAIL'}: ${errors} errors in ${result.totalRequests} requests (target 0); ${totalThrottled(result)} answered 429`,
  );
  process.exitCode = pass ? 0 : 1;
} finally {
  await stack.stop();
  await rm(memoryDir, { recursive: true, force: true });
}
