/**
 * Traffic traces for the fleet simulation: generated (steady, bursty, daily cycle) from a seed, or
 * read from a file (JSON `[{"t": seconds, "n": images}]` or CSV `t,n` lines; `n` defaults to 1).
 */
import { readFileSync } from 'node:fs';

export interface Arrival {
  /** Seconds from the start of the trace. */
  t: number;
  /** Images in the job (the runner renders them one after another). */
  n: number;
}

export interface Trace {
  name: string;
  durationSeconds: number;
  arrivals: Arrival[];
}

/** mulberry32: small, fast, deterministic. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const exponential = (rand: () => number, mean: number) => -Math.log(1 - rand()) * mean;

/** Images per job: mostly 1, sometimes up to 4 (the API's n). */
function images(rand: () => number): number {
  const u = rand();
  return u < 0.7 ? 1 : u < 0.85 ? 2 : u < 0.95 ? 3 : 4;
}

/** Non-homogeneous Poisson arrivals by thinning; `rate(t)` in jobs per second, at most `peak`. */
function poisson(rand: () => number, hours: number, peak: number, rate: (t: number) => number): Arrival[] {
  const out: Arrival[] = [];
  const end = hours * 3600;
  let t = 0;
  while (peak > 0) {
    t += exponential(rand, 1 / peak);
    if (t >= end) break;
    if (rand() * peak <= rate(t)) out.push({ t, n: images(rand) });
  }
  return out;
}

export const TRACE_NAMES = ['steady', 'bursty', 'daily'] as const;
export type TraceName = (typeof TRACE_NAMES)[number];

/**
 * - steady: 2 jobs a minute around the clock (about a third of one GPU at 10 s per image).
 * - bursty: a trickle (one job every 5 minutes) with a 10-minute burst of 20 jobs a minute every ~3 hours.
 * - daily: a day-night cycle, none at night, 6 jobs a minute at the midday peak.
 */
export function generateTrace(name: TraceName, seed: number, hours = 24): Trace {
  const rand = rng(seed);
  const perMin = (x: number) => x / 60;
  let arrivals: Arrival[];
  if (name === 'steady') {
    arrivals = poisson(rand, hours, perMin(2), () => perMin(2));
  } else if (name === 'bursty') {
    const bursts: number[] = [];
    for (let t = exponential(rand, 3600); t < hours * 3600; t += 3600 + exponential(rand, 2 * 3600))
      bursts.push(t);
    const inBurst = (t: number) => bursts.some((b) => t >= b && t < b + 600);
    arrivals = poisson(rand, hours, perMin(20), (t) => (inBurst(t) ? perMin(20) : perMin(0.2)));
  } else {
    const day = 24 * 3600;
    arrivals = poisson(rand, hours, perMin(6), (t) => {
      const phase = Math.sin((2 * Math.PI * ((t % day) - 6 * 3600)) / day);
      return perMin(6) * Math.max(0, phase);
    });
  }
  return { name, durationSeconds: hours * 3600, arrivals };
}

/** Reads a trace file: JSON array of {t, n?} or CSV lines "t,n" (a header line is allowed). */
export function readTraceFile(path: string): Trace {
  const text = readFileSync(path, 'utf8');
  let rows: { t: unknown; n?: unknown }[];
  if (text.trimStart().startsWith('[')) {
    rows = JSON.parse(text) as { t: unknown; n?: unknown }[];
  } else {
    rows = text
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '' && !/^[a-z]/i.test(l))
      .map((l) => {
        const [t, n] = l.split(',');
        return { t: Number(t), n: n === undefined ? undefined : Number(n) };
      });
  }
  const arrivals = rows.map((r, i) => {
    const t = Number(r.t);
    const n = r.n === undefined ? 1 : Number(r.n);
    if (!Number.isFinite(t) || t < 0 || !Number.isInteger(n) || n < 1) {
      throw new Error(`${path}: row ${i + 1} must have t >= 0 (seconds) and an integer n >= 1`);
    }
    return { t, n };
  });
  arrivals.sort((a, b) => a.t - b.t);
  const last = arrivals.at(-1)?.t ?? 0;
  return { name: path, durationSeconds: Math.ceil(last + 3600), arrivals };
}
