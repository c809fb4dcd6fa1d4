/**
 * `npm run simulate [-- --preset dev|prod|all] [--trace steady|bursty|daily|all|FILE] [--seed N]
 * [--hours H] [--config JSON]`: runs the fleet simulation with the presets' scaling settings and
 * prints queue wait, GPU utilisation and cost per 1,000 images as a Markdown table.
 */
import { parseArgs } from 'node:util';
import { PRESET_NAMES, resolveConfig } from '../lib/config.js';
import { type SimResult, simulateFleet } from './fleet-sim.js';
import { generateTrace, readTraceFile, TRACE_NAMES, type Trace, type TraceName } from './traces.js';

function fmtSeconds(s: number): string {
  return s < 120 ? `${s.toFixed(0)} s` : `${(s / 60).toFixed(1)} min`;
}

export function formatTable(results: SimResult[]): string {
  const rows = [
    '| preset | trace | jobs | images | p50 wait | p95 wait | GPU util. | instance-h | cost | $ / 1,000 images | max tasks | cold-start wait (median) | spot interruptions |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const r of results) {
    const cold = [...r.coldStartWaits].sort((a, b) => a - b);
    rows.push(
      `| ${r.preset} | ${r.trace} | ${r.jobs} | ${r.images} | ${fmtSeconds(r.p50WaitSeconds)} | ${fmtSeconds(r.p95WaitSeconds)} | ` +
        `${(r.gpuUtilisation * 100).toFixed(0)} % | ${r.instanceHours.toFixed(1)} | $${r.costUsd.toFixed(2)} | ` +
        `$${r.costPer1000Images.toFixed(2)} | ${r.maxTasks} | ${cold.length ? fmtSeconds(cold[Math.floor(cold.length / 2)]!) : '–'} | ${r.spotInterruptions} |`,
    );
  }
  return rows.join('\n');
}

function main(argv: string[]): void {
  const { values } = parseArgs({
    args: argv,
    options: {
      preset: { type: 'string', default: 'all' },
      trace: { type: 'string', default: 'all' },
      seed: { type: 'string', default: '1' },
      hours: { type: 'string', default: '24' },
      config: { type: 'string' },
    },
    strict: true,
  });
  const seed = Number(values.seed);
  const hours = Number(values.hours);
  if (!Number.isInteger(seed) || !(hours > 0))
    throw new Error('--seed must be an integer and --hours positive');
  const presets = values.preset === 'all' ? [...PRESET_NAMES] : [values.preset];
  const overrides = values.config ? (JSON.parse(values.config) as unknown) : {};
  const traces: Trace[] =
    values.trace === 'all'
      ? TRACE_NAMES.map((t) => generateTrace(t, seed, hours))
      : (TRACE_NAMES as readonly string[]).includes(values.trace)
        ? [generateTrace(values.trace as TraceName, seed, hours)]
        : [readTraceFile(values.trace)];
  const results: SimResult[] = [];
  for (const preset of presets) {
    const config = resolveConfig(preset, overrides);
    for (const trace of traces) results.push(simulateFleet(config, trace, seed));
  }
  console.log(formatTable(results));
  const first = resolveConfig(presets[0]!, overrides).models[0]!;
  console.log(
    `\nseed ${seed}, ${hours} h traces; ${first.id} at ${first.secondsPerImage} s/image on ${first.instanceTypes[0]}; ` +
      'cost is GPU instance time only (spot/on-demand per the preset), idle time included.',
  );
}

main(process.argv.slice(2));
