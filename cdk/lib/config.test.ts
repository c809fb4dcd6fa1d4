/** The typed deploy config: presets, overrides from context, and errors that name the field. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ModelInfoSchema } from '@sd3/shared';
import {
  ConfigError,
  configFromContext,
  graceSeconds,
  mergeOverrides,
  modelInfos,
  PRESETS,
  resolveConfig,
  stopTimeoutSeconds,
} from './config.js';

describe('presets', () => {
  test('dev scales to zero on spot; prod keeps one warm on-demand task', () => {
    const dev = resolveConfig('dev');
    const prod = resolveConfig('prod');
    assert.equal(dev.models[0]!.minTasks, 0);
    assert.equal(dev.capacity.onDemandBaseCapacity, 0);
    assert.equal(dev.capacity.onDemandPercentageAboveBase, 0);
    assert.equal(dev.network.natGateways, 0);
    assert.equal(prod.models[0]!.minTasks, 1);
    assert.equal(prod.capacity.onDemandBaseCapacity, 1);
    assert.equal(prod.removal, 'retain');
  });

  test('stop timeout covers one image within the ECS limit; the runner gives up first', () => {
    for (const preset of ['dev', 'prod']) {
      for (const m of resolveConfig(preset).models) {
        assert.ok(stopTimeoutSeconds(m) >= m.secondsPerImage && stopTimeoutSeconds(m) <= 120);
        assert.ok(graceSeconds(m) < stopTimeoutSeconds(m));
      }
    }
    const slow = resolveConfig('dev', { models: [{ ...PRESETS.dev.models[0], secondsPerImage: 400 }] })
      .models[0]!;
    assert.equal(stopTimeoutSeconds(slow), 120);
  });

  test('the models the edge serves match the shared ModelInfo shape, one default', () => {
    const infos = modelInfos(resolveConfig('dev'));
    for (const m of infos) ModelInfoSchema.parse(m);
    assert.equal(infos.filter((m) => m.default).length, 1);
    // The preset's price reaches GET /v1/models (and the quotes) in the edge's shape.
    assert.deepEqual(infos[0]!.price, { millicredits_per_megapixel_step: 40, minimum_millicredits: 100 });
  });
});

describe('overrides', () => {
  test('objects merge key by key, arrays replace', () => {
    assert.deepEqual(mergeOverrides({ a: { b: 1, c: 2 }, l: [1, 2] }, { a: { c: 3 }, l: [9] }), {
      a: { b: 1, c: 3 },
      l: [9],
    });
  });

  test('context: preset and a JSON string of overrides', () => {
    const ctx: Record<string, unknown> = { preset: 'prod', config: '{"alarms":{"email":"ops@example.com"}}' };
    const c = configFromContext((k) => ctx[k]);
    assert.equal(c.preset, 'prod');
    assert.equal(c.alarms.email, 'ops@example.com');
    assert.equal(c.alarms.edge5xxPercent, PRESETS.prod.alarms.edge5xxPercent);
    assert.equal(configFromContext(() => undefined).preset, 'dev');
  });

  test('bad values are refused naming the field', () => {
    const cases: [unknown, RegExp][] = [
      [
        { queue: { heartbeatSeconds: 50 } },
        /queue\.heartbeatSeconds: must be less than half of visibilityTimeoutSeconds/,
      ],
      [
        { models: [{ ...PRESETS.dev.models[0], instanceTypes: ['m5.large'] }] },
        /models\.0\.instanceTypes\.0/,
      ],
      [{ models: [{ ...PRESETS.dev.models[0], minTasks: 5, maxTasks: 2 }] }, /models\.0\.minTasks/],
      [
        { models: [{ ...PRESETS.dev.models[0], instanceTypes: ['g6e.2xlarge'] }] },
        /no price for g6e\.2xlarge/,
      ],
      [{ retention: { logDays: 10 } }, /retention\.logDays/],
      [{ models: [PRESETS.dev.models[0], PRESETS.dev.models[0]] }, /duplicate model sd3-medium/],
      [{ surprise: 1 }, /surprise|Unrecognized/],
    ];
    for (const [overrides, message] of cases) {
      assert.throws(
        () => resolveConfig('dev', overrides),
        (err: unknown) => err instanceof ConfigError && message.test(err.message),
      );
    }
    assert.throws(() => resolveConfig('staging'), /unknown preset "staging"/);
    assert.throws(() => configFromContext((k) => (k === 'config' ? '{nope' : undefined)), /not valid JSON/);
  });
});
