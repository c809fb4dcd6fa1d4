import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EDGE_ENV, ENV } from '@sd3/shared';
import { createApp } from '../../app.js';
import { TEST_MODELS } from '../../test-support/edge-stack.js';
import { createAwsDeps } from './create-aws-deps.js';

const good = {
  [ENV.JOBS_TABLE]: 'jobs',
  [ENV.KEYS_TABLE]: 'keys',
  [ENV.IDEMPOTENCY_TABLE]: 'idem',
  [ENV.RATE_LIMITS_TABLE]: 'limits',
  [ENV.MEDIA_BUCKET]: 'media',
  [ENV.JOB_QUEUES]: JSON.stringify({
    tiny: 'https://sqs.example/1/tiny',
    'sd3-medium': 'https://sqs.example/1/m',
  }),
  [ENV.SIGNING_KEYS]: JSON.stringify({ k1: Buffer.alloc(32, 1).toString('base64') }),
  [ENV.SIGNING_KEY_ID]: 'k1',
  [EDGE_ENV.MODELS]: JSON.stringify(TEST_MODELS),
  AWS_REGION: 'eu-west-1',
};

test('a complete environment builds deps; the default model is the flagged one', () => {
  const deps = createAwsDeps(good);
  assert.equal(deps.defaultModel, 'tiny');
  assert.equal(deps.models.length, 2);
  createApp(deps);
  deps.destroy();
});

test('default key limits come from the environment; the key cache TTL is at most a minute', () => {
  const deps = createAwsDeps({
    ...good,
    [EDGE_ENV.DEFAULT_REQUESTS_PER_MINUTE]: '120',
    [EDGE_ENV.DEFAULT_CONCURRENT_JOBS]: '3',
  });
  assert.deepEqual(deps.keyLimits, { requestsPerMinute: 120, concurrentJobs: 3 });
  createApp(deps);
  assert.throws(
    () => createApp(createAwsDeps({ ...good, [EDGE_ENV.KEY_CACHE_TTL_MS]: '60001' })),
    /keyCacheTtlMs: at most 60000/,
  );
  assert.throws(
    () => createApp(createAwsDeps({ ...good, [EDGE_ENV.DEFAULT_CONCURRENT_JOBS]: '0' })),
    /keyLimits.concurrentJobs/,
  );
  deps.destroy();
});

test('a bad environment fails at start naming each variable', () => {
  const bad = {
    ...good,
    [ENV.JOBS_TABLE]: undefined,
    [ENV.SIGNING_KEYS]: JSON.stringify({ k1: 'c2hvcnQ=' }),
    [EDGE_ENV.KEY_CACHE_TTL_MS]: 'soon',
    [ENV.AWS_ENDPOINT_S3]: 'localhost',
  };
  assert.throws(
    () => createAwsDeps(bad),
    (err: Error) => {
      for (const needle of [
        'SD3_JOBS_TABLE',
        'SD3_SIGNING_KEYS: signing key k1 must be at least 32 bytes',
        'SD3_KEY_CACHE_TTL_MS: must be a whole number',
        'SD3_S3_ENDPOINT: must be an http(s) URL',
      ]) {
        assert.ok(err.message.includes(needle), `${needle} in ${err.message}`);
      }
      return true;
    },
  );
  assert.throws(
    () => createAwsDeps({ ...good, [EDGE_ENV.MODELS]: '[{"id":"x"}]' }),
    /SD3_MODELS: an array of models .* at 0\./,
  );
  assert.throws(
    () =>
      createAwsDeps({
        ...good,
        [ENV.JOB_QUEUES]: JSON.stringify({ tiny: 'https://sqs.example/1/tiny' }),
        AWS_REGION: undefined,
      }),
    (err: Error) =>
      err.message.includes('SD3_JOB_QUEUES: no jobs queue for model sd3-medium') &&
      err.message.includes('AWS_REGION'),
  );
});

test('app deps are checked: the default model and the signing key id must exist', () => {
  const deps = createAwsDeps(good);
  assert.throws(
    () => createApp({ ...deps, defaultModel: 'gone' }),
    /defaultModel: gone is not one of the served models/,
  );
  assert.throws(
    () => createApp({ ...deps, signing: { ...deps.signing, kid: 'k9' } }),
    /signing.kid: no signing key with id k9/,
  );
  deps.destroy();
});
