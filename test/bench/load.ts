/**
 * `npm run bench:load [-- --duration 60 --slices 4 --connections 16]`: the mixed workload of load-lib.ts
 * against the local stack (emulators, edge and runner each in their own process) and, with the
 * same autocannon settings in alternating turns, against a bare Hono app answering the same paths. Prints requests,
 * req/s, p50/p99/max and errors per route, the throughput ratio to bare Hono, the jobs the runner
 * finished and the queue left behind, and PASS/FAIL for "zero errors".
 */
import {
  cpuLine,
  jobsLine,
  type MixResult,
  machineLine,
  mergeMix,
  Pools,
  parseFlags,
  queueState,
  routeTable,
  rssTable,
  runMix,
  sampleRss,
  startHost,
  totalErrors,
  totalThrottled,
  warmUp,
} from './load-lib.js';

const flags = parseFlags(
  process.argv.slice(2),
  [
    { name: 'duration', help: 'seconds of load on each target', default: 60, min: 1, max: 3600 },
    { name: 'connections', help: 'keep-alive connections', default: 16, min: 1, max: 1000 },
    {
      name: 'slices',
      help: 'turns each target takes (the duration is split among them)',
      default: 4,
      min: 1,
      max: 100,
    },
    {
      name: 'keys',
      help: 'API keys of the bench tenant the requests spread over',
      default: 8,
      min: 1,
      max: 100,
    },
  ],
  'usage: npm run bench:load -- [flags]',
);

const slices = flags['slices']!;
if (flags['duration']! % slices !== 0 || flags['duration']! / slices < 5) {
  console.error(
    `--duration (${flags['duration']}) must split into --slices (${slices}) whole turns of at least 5 s each`,
  );
  process.exit(2);
}
console.log(
  `# Load: mixed workload, ${flags['duration']} s per target in ${slices} alternating turns of ${flags['duration']! / slices} s, ${flags['connections']} connections (autocannon)\n`,
);
console.log(`before: ${machineLine()}`);
const stack = await startHost('stack', { BENCH_KEYS: String(flags['keys']) });
let bare: Awaited<ReturnType<typeof startHost>> | undefined;
try {
  bare = await startHost('bare', { BENCH_TOKEN: stack.info.tokens[0]! });
  const pids: Record<string, number> = { edge: stack.info.pids.edge, emulators: stack.info.pids.host };
  if (stack.info.pids.runner !== null) pids['runner'] = stack.info.pids.runner;
  const before = await queueState(stack.info);

  const pools = new Pools();
  await warmUp(stack.info, pools);
  const barePools = new Pools();
  await warmUp(bare.info, barePools);
  // Edge and bare Hono take turns, so a change in what else the machine runs hits both alike.
  const settings = { durationS: flags['duration']! / slices, connections: flags['connections']! };
  const edgeRuns: MixResult[] = [];
  const bareRuns: MixResult[] = [];
  const rss = sampleRss(pids, 10_000);
  for (let i = 0; i < slices; i++) {
    edgeRuns.push(
      await runMix({ url: stack.info.url, tokens: stack.info.tokens, replayHeader: true }, settings, pools),
    );
    bareRuns.push(
      await runMix(
        { url: bare.info.url, tokens: bare.info.tokens, replayHeader: false },
        settings,
        barePools,
      ),
    );
  }
  const samples = rss.stop();
  const after = await queueState(stack.info);
  const edge = mergeMix(edgeRuns);
  const baseline = mergeMix(bareRuns);

  console.log('## Per route: the edge on the local stack; bare Hono with the same settings\n');
  console.log(routeTable(edge, baseline));
  console.log(`\n## Bare Hono alone\n`);
  console.log(routeTable(baseline));
  const succeededBefore = before.jobsByStatus['succeeded'] ?? 0;
  console.log(`\n## The stack after the run`);
  console.log(`- ${jobsLine(after)}`);
  console.log(
    `- jobs the runner finished during the run: ${(after.jobsByStatus['succeeded'] ?? 0) - succeededBefore} succeeded, ${after.jobsByStatus['failed'] ?? 0} failed`,
  );
  console.log(`\n## Resident memory during the run (edge and bare Hono turns)\n`);
  console.log(rssTable(samples));
  console.log(`\n${cpuLine(samples)}`);
  console.log(`after the run: ${machineLine()}`);
  const errors = totalErrors(edge);
  const throttled = totalThrottled(edge);
  if (edge.unexpected.length > 0) {
    console.log(`\nunexpected answers (first ${edge.unexpected.length}):`);
    for (const u of edge.unexpected) console.log(`- ${u}`);
  }
  console.log(
    `\n${errors === 0 ? 'PASS' : 'FAIL'}: ${errors} errors in ${edge.totalRequests} requests (target 0); ${throttled} answered 429`,
  );
  process.exitCode = errors === 0 ? 0 : 1;
} finally {
  await bare?.stop();
  await stack.stop();
}
