import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ENV, MAX_RECEIVES, RUNNER_ENV } from '@sd3/shared';
import { ConfigError, parseRunnerConfig, runnerConfigFromEnv } from './config.js';

const SECRET = Buffer.alloc(32, 7).toString('base64');
const BASE: Record<string, string> = {
  [ENV.JOB_QUEUE_URL]: 'http://127.0.0.1:4566/000000000000/sd3-tiny-jobs',
  [ENV.DLQ_URL]: 'http://127.0.0.1:4566/000000000000/sd3-tiny-dlq',
  [ENV.JOBS_TABLE]: 'sd3-jobs',
  [ENV.MEDIA_BUCKET]: 'sd3-media',
  [ENV.SIGNING_KEYS]: JSON.stringify({ k1: SECRET }),
  [ENV.MODEL_ID]: 'tiny',
  [ENV.MODEL_DIR]: '/models/tiny',
};

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err;
  }
  assert.fail('expected a ConfigError');
}

test('defaults for every tunable; the lease is visibility minus heartbeat', () => {
  const c = runnerConfigFromEnv(BASE);
  assert.equal(c.queueUrl, BASE[ENV.JOB_QUEUE_URL]);
  assert.equal(c.provider, 'cpu');
  assert.equal(c.t5, true);
  assert.equal(c.waitTimeSeconds, 20);
  assert.equal(c.visibilityTimeoutSeconds, 60);
  assert.equal(c.heartbeatIntervalSeconds, 15);
  assert.equal(c.leaseMs, 45_000);
  assert.equal(c.progressIntervalMs, 1000);
  assert.equal(c.graceSeconds, 20);
  assert.equal(c.healthPort, 8080);
  assert.equal(c.maxReceives, MAX_RECEIVES);
  assert.equal(c.dlqHideSeconds, 43_200);
  assert.deepEqual(c.endpoints, {});
  assert.equal(c.region, undefined);
  assert.equal(c.signingKeys.get('k1')?.length, 32);
  assert.match(c.runnerId, /\S+-\d+-\w+/);
});

test('endpoint overrides, region and tunables are read from their variables', () => {
  const c = runnerConfigFromEnv({
    ...BASE,
    [ENV.AWS_ENDPOINT_SQS]: 'http://127.0.0.1:1',
    [ENV.AWS_ENDPOINT_S3]: 'http://127.0.0.1:2',
    [ENV.AWS_ENDPOINT_DYNAMODB]: 'http://127.0.0.1:3',
    AWS_DEFAULT_REGION: 'eu-west-1',
    [ENV.PROVIDER]: 'cuda',
    [RUNNER_ENV.T5]: 'false',
    [RUNNER_ENV.RUNNER_ID]: 'runner-7',
    [RUNNER_ENV.WAIT_TIME_SECONDS]: '5',
    [RUNNER_ENV.VISIBILITY_TIMEOUT_SECONDS]: '120',
    [RUNNER_ENV.HEARTBEAT_INTERVAL_SECONDS]: '30',
    [RUNNER_ENV.MAX_RECEIVES]: '5',
  });
  assert.deepEqual(c.endpoints, {
    sqs: 'http://127.0.0.1:1',
    s3: 'http://127.0.0.1:2',
    dynamodb: 'http://127.0.0.1:3',
  });
  assert.equal(c.region, 'eu-west-1');
  assert.equal(c.provider, 'cuda');
  assert.equal(c.t5, false);
  assert.equal(c.runnerId, 'runner-7');
  assert.equal(c.waitTimeSeconds, 5);
  assert.equal(c.leaseMs, 90_000);
  assert.equal(c.maxReceives, 5);
});

test('every missing variable is named in one error', () => {
  const err = configError(() => runnerConfigFromEnv({ [ENV.MODEL_ID]: 'tiny' }));
  for (const name of [
    ENV.JOB_QUEUE_URL,
    ENV.DLQ_URL,
    ENV.JOBS_TABLE,
    ENV.MEDIA_BUCKET,
    ENV.SIGNING_KEYS,
    ENV.MODEL_DIR,
  ]) {
    assert.ok(err.issues.includes(`${name}: is required`), `${name} in ${err.message}`);
  }
  assert.equal(err.issues.length, 6);
});

test('out-of-range and malformed values say what was expected and what was found', () => {
  const cases: [Record<string, string>, string][] = [
    [
      { [RUNNER_ENV.WAIT_TIME_SECONDS]: '30' },
      'SD3_RUNNER_WAIT_TIME_SECONDS: must be an integer from 1 to 20 s, got "30"',
    ],
    [
      { [RUNNER_ENV.PROGRESS_INTERVAL_MS]: '1.5' },
      'SD3_RUNNER_PROGRESS_INTERVAL_MS: must be an integer from 0 to 60000 ms, got "1.5"',
    ],
    [{ [ENV.PROVIDER]: 'rocm' }, 'SD3_PROVIDER: must be one of cpu, cuda, tensorrt, got "rocm"'],
    [{ [RUNNER_ENV.T5]: 'maybe' }, 'SD3_RUNNER_T5: must be true or false, got "maybe"'],
    [
      { [ENV.AWS_ENDPOINT_SQS]: 'localhost:4566' },
      'SD3_SQS_ENDPOINT: must be an http(s) URL, got "localhost:4566"',
    ],
  ];
  for (const [env, message] of cases) {
    const err = configError(() => runnerConfigFromEnv({ ...BASE, ...env }));
    assert.deepEqual(err.issues, [message]);
  }
});

test('the heartbeat must fit twice in the visibility timeout', () => {
  const err = configError(() =>
    runnerConfigFromEnv({
      ...BASE,
      [RUNNER_ENV.VISIBILITY_TIMEOUT_SECONDS]: '60',
      [RUNNER_ENV.HEARTBEAT_INTERVAL_SECONDS]: '30',
    }),
  );
  assert.match(
    err.message,
    /SD3_RUNNER_HEARTBEAT_INTERVAL_SECONDS: must be less than half of SD3_RUNNER_VISIBILITY_TIMEOUT_SECONDS \(got 30 s and 60 s\)/,
  );
});

test('bad signing keys are refused without echoing the secret', () => {
  const short = Buffer.alloc(8, 1).toString('base64');
  const err = configError(() =>
    runnerConfigFromEnv({ ...BASE, [ENV.SIGNING_KEYS]: JSON.stringify({ k1: short }) }),
  );
  assert.deepEqual(err.issues, ['SD3_SIGNING_KEYS: signing key k1 must be at least 32 bytes']);
  assert.ok(!err.message.includes(short));
  const notJson = configError(() => runnerConfigFromEnv({ ...BASE, [ENV.SIGNING_KEYS]: 'k1=abc' }));
  assert.match(notJson.issues[0]!, /^SD3_SIGNING_KEYS: signing keys must be a JSON object/);
});

test('parseRunnerConfig takes values from code and names fields in errors', () => {
  const c = parseRunnerConfig({
    queueUrl: 'q',
    dlqUrl: 'd',
    jobsTable: 't',
    mediaBucket: 'b',
    signingKeys: JSON.stringify({ k1: SECRET }),
    modelId: 'tiny',
    modelDir: '/m',
    waitTimeSeconds: 1,
    visibilityTimeoutSeconds: 3,
    heartbeatIntervalSeconds: 1,
    t5: false,
  });
  assert.equal(c.leaseMs, 2000);
  assert.equal(c.t5, false);
  const err = configError(() => parseRunnerConfig({ queueUrl: 'q', waitTimeSeconds: 0 }));
  assert.ok(err.issues.includes('waitTimeSeconds: must be an integer from 1 to 20 s, got 0'), err.message);
  assert.ok(err.issues.includes('dlqUrl: is required'));
});
