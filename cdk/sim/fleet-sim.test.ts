/**
 * The fleet simulation on tiny traces: every job is served exactly once (also through spot
 * interruptions and scale-in), scale from zero happens within the wake alarm's window, runs are
 * deterministic for a seed, and trace files parse.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { resolveConfig } from '../lib/config.js';
import { AWS_BEHAVIOUR, simulateFleet } from './fleet-sim.js';
import { generateTrace, readTraceFile, type Trace } from './traces.js';

const dev = resolveConfig('dev');
const prod = resolveConfig('prod');

/** 30 jobs: a trickle, then a burst of 20 within two minutes. */
const tiny: Trace = {
  name: 'tiny',
  durationSeconds: 3600,
  arrivals: [
    ...Array.from({ length: 10 }, (_, i) => ({ t: 300 + i * 120, n: 1 + (i % 3) })),
    ...Array.from({ length: 20 }, (_, i) => ({ t: 1800 + i * 6, n: 1 })),
  ],
};

function assertConserved(r: ReturnType<typeof simulateFleet>, trace: Trace) {
  assert.equal(r.completions.size, trace.arrivals.length, 'every job completed');
  for (const [id, count] of r.completions) assert.equal(count, 1, `job ${id} completed once`);
  assert.equal(r.waits.length, trace.arrivals.length);
  assert.ok(r.waits.every((w) => w >= 0));
}

describe('fleet simulation', () => {
  test('conservation: every job served exactly once (dev and prod)', () => {
    for (const config of [dev, prod]) {
      const r = simulateFleet(config, tiny, 7);
      assertConserved(r, tiny);
      assert.equal(r.images, 19 + 20);
      assert.ok(r.maxTasks <= config.models[0]!.maxTasks);
      assert.ok(r.gpuUtilisation > 0 && r.gpuUtilisation <= 1);
    }
  });

  test('conservation through spot interruptions and released jobs', () => {
    const stormy = resolveConfig('dev', {
      spotInterruptionsPerHour: 4,
      models: [{ ...resolveConfig('dev').models[0]!, secondsPerImage: 100, maxTasks: 2 }],
    });
    const trace: Trace = {
      name: 'slow',
      durationSeconds: 4 * 3600,
      arrivals: tiny.arrivals.map((a) => ({ ...a, t: a.t * 4 })),
    };
    const r = simulateFleet(stormy, trace, 3);
    assert.ok(r.spotInterruptions > 0, 'interruptions happened');
    assert.ok(r.released > 0, 'some jobs were released mid-way and run again');
    assertConserved(r, trace);
  });

  test('scale from zero within the wake window, first image after the cold start', () => {
    const one: Trace = { name: 'one', durationSeconds: 1800, arrivals: [{ t: 600.5, n: 1 }] };
    const r = simulateFleet(dev, one, 1);
    assert.equal(r.wakeDelays.length, 1);
    const period = dev.scaling.wakePeriodSeconds;
    // The alarm needs its evaluation periods plus one period of publishing delay, plus tick alignment.
    assert.ok(
      r.wakeDelays[0]! <= period * (dev.scaling.wakeEvaluationPeriods + 2),
      `woke after ${r.wakeDelays[0]} s`,
    );
    const m = dev.models[0]!;
    const coldStart =
      r.wakeDelays[0]! +
      AWS_BEHAVIOUR.capacityProviderDelaySeconds +
      dev.capacity.instanceBootSeconds +
      m.modelLoadSeconds;
    assert.equal(r.coldStartWaits.length, 1);
    assert.ok(Math.abs(r.coldStartWaits[0]! - coldStart) <= period, `${r.coldStartWaits[0]} vs ${coldStart}`);
    // And it scales back to zero: no instance outlives the job by more than the scale-in path.
    assert.ok(r.instanceHours < 1);
  });

  test('prod keeps a warm task: a lone job does not wait', () => {
    const r = simulateFleet(prod, { name: 'one', durationSeconds: 600, arrivals: [{ t: 100, n: 1 }] }, 1);
    assert.deepEqual(r.waits, [0]);
    assert.deepEqual(r.wakeDelays, []);
  });

  test('deterministic for a seed', () => {
    const t1 = generateTrace('bursty', 42, 6);
    const t2 = generateTrace('bursty', 42, 6);
    assert.deepEqual(t1, t2);
    assert.notDeepEqual(generateTrace('bursty', 43, 6).arrivals, t1.arrivals);
    const a = simulateFleet(dev, t1, 42);
    const b = simulateFleet(dev, t2, 42);
    assert.equal(a.costUsd, b.costUsd);
    assert.deepEqual(a.waits, b.waits);
  });
});

describe('trace files', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sd3-trace-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('JSON and CSV, sorted, n defaults to 1; bad rows are refused', () => {
    writeFileSync(join(dir, 'a.json'), JSON.stringify([{ t: 20, n: 2 }, { t: 5 }]));
    writeFileSync(join(dir, 'b.csv'), 't,n\n5\n20,2\n');
    for (const f of ['a.json', 'b.csv']) {
      const trace = readTraceFile(join(dir, f));
      assert.deepEqual(trace.arrivals, [
        { t: 5, n: 1 },
        { t: 20, n: 2 },
      ]);
      assertConserved(simulateFleet(dev, trace, 1), trace);
    }
    writeFileSync(join(dir, 'bad.csv'), '5,0\n');
    assert.throws(() => readTraceFile(join(dir, 'bad.csv')), /row 1/);
  });
});
