import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { ENV, inputImageKey, outputKey, RUNNER_ENV } from '@sd3/shared';
import sharp from 'sharp';
import { PipelineError } from '../errors.js';
import { readImageMetadata } from '../image/image-codec.js';
import { writeTinyModel } from '../tiny-model/index.js';
import { runnerConfigFromEnv } from './config.js';
import { createLogger } from './logger.js';
import type { MessageOutcome, RunnerEventMap } from './queue-consumer.js';
import { type RunnerHandle, startRunner } from './runner.js';
import {
  createLane,
  getJob,
  type Lane,
  queueCounts,
  type Stack,
  startStack,
  submitJob,
  TENANT,
  waitFor,
} from './test-fixtures.js';

type Finished = RunnerEventMap['job_finished'][0];

let root: string;
let modelDir: string;
let stack: Stack;
let lane: Lane;
let runner: RunnerHandle;
const finished: Finished[] = [];
const logLines: string[] = [];

function watch(r: RunnerHandle, into: Finished[]): void {
  r.events.on('job_finished', (e) => into.push(e));
}

async function outcomeOf(
  jobId: string,
  list = finished,
  count = 1,
  timeoutMs = 10_000,
): Promise<MessageOutcome[]> {
  return waitFor(
    `${count} outcome(s) of ${jobId}`,
    () => {
      const mine = list.filter((e) => e.jobId === jobId).map((e) => e.outcome);
      return mine.length >= count ? mine : undefined;
    },
    timeoutMs,
  );
}

async function body(stackRef: Stack, key: string): Promise<Buffer> {
  const out = await stackRef.clients.s3.send(new GetObjectCommand({ Bucket: lane.res.bucket, Key: key }));
  return Buffer.from(await out.Body!.transformToByteArray());
}

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'sd3-runner-'));
  modelDir = (await writeTinyModel(join(root, 'tiny'))).dir;
  stack = await startStack();
  lane = await createLane(stack, 'main', modelDir);
  const config = runnerConfigFromEnv(lane.env());
  // Capture every log line to check ids are present and secrets are not.
  const logger = createLogger({
    level: 'debug',
    write: (line) => logLines.push(line),
    fields: { runner_id: config.runnerId },
  });
  runner = await startRunner(config, { logger });
  watch(runner, finished);
});

after(async () => {
  await runner?.stop('test over');
  await stack?.stop();
  await rm(root, { recursive: true, force: true });
});

test('a job runs to succeeded: PNG outputs in S3, timings, events queued→started→progress→succeeded', async () => {
  const { jobId, sig } = await submitJob(stack, lane, { params: { width: 96, height: 64, n: 2, steps: 6 } });
  assert.deepEqual(await outcomeOf(jobId), ['completed']);
  const job = await getJob(stack, lane, jobId);
  assert.equal(job.status, 'succeeded');
  assert.equal(job.attempts, 1);
  assert.equal(job.queuedModel, undefined, 'queuedModel is removed when the job leaves queued');
  assert.equal(job.outputs?.length, 2);
  for (const [i, out] of job.outputs!.entries()) {
    assert.equal(out.key, outputKey(TENANT, jobId, i, 'png'));
    const file = await body(stack, out.key);
    const meta = await sharp(file).metadata();
    assert.equal(meta.format, 'png');
    assert.equal(meta.width, 96);
    assert.equal(meta.height, 64);
    assert.equal(out.bytes, file.length);
    assert.equal(out.seed, 42);
    const embedded = await readImageMetadata(file);
    assert.equal(embedded?.['prompt'], 'a lighthouse at dusk');
    assert.equal(embedded?.['index'], i);
  }
  const t = job.timings!;
  for (const k of ['queue_ms', 'encode_ms', 'denoise_ms', 'decode_ms', 'upload_ms', 'total_ms'] as const) {
    assert.equal(typeof t[k], 'number', `timings.${k}`);
  }
  assert.equal(t.queue_ms, job.startedAt! - job.createdAt);
  assert.equal(typeof t.model_load_ms, 'number', 'the first job of a runner carries the model load');
  const types = job.events.map((e) => e.type);
  assert.equal(types[0], 'generation.queued');
  assert.equal(types[1], 'generation.started');
  assert.ok(types.includes('generation.progress'), types.join(' '));
  assert.equal(types.at(-1), 'generation.succeeded');
  assert.deepEqual(
    job.events.map((e) => e.id),
    job.events.map((_, i) => `${jobId}.${String(i).padStart(4, '0')}`),
    'event ids are dense and in order',
  );
  const last = job.events.at(-1)!.data as { outputs: Record<string, unknown>[]; timings: object };
  assert.equal(last.outputs.length, 2);
  assert.equal(last.outputs[0]!['key'], undefined, 'object keys stay out of public events');
  assert.deepEqual(last.timings, job.timings);
  assert.deepEqual(await queueCounts(stack, lane.queueUrl), { visible: 0, hidden: 0 });
  // Logs: JSON lines carrying the ids, never the envelope signature.
  const lines = logLines.map((l) => JSON.parse(l) as Record<string, unknown>);
  const mine = lines.filter((l) => l['job_id'] === jobId);
  assert.ok(
    mine.some((l) => l['msg'] === 'job succeeded' && l['message_id'] && l['request_id'] === `req_${jobId}`),
  );
  assert.ok(mine.every((l) => l['runner_id'] === runner.runnerId));
  assert.ok(!logLines.some((l) => l.includes(sig)), 'the signature never reaches the logs');
});

test('a redelivered message for a finished job does nothing and is deleted', async () => {
  const sub = await submitJob(stack, lane);
  await outcomeOf(sub.jobId);
  const done = await getJob(stack, lane, sub.jobId);
  assert.equal(done.timings?.model_load_ms, undefined, 'only the first job carries the model load');
  await stack.clients.sqs.send(new SendMessageCommand({ QueueUrl: lane.queueUrl, MessageBody: sub.body }));
  assert.deepEqual(await outcomeOf(sub.jobId, finished, 2), ['completed', 'duplicate']);
  assert.deepEqual(await getJob(stack, lane, sub.jobId), done, 'the record is untouched');
  assert.deepEqual(await queueCounts(stack, lane.queueUrl), { visible: 0, hidden: 0 });
});

for (const [tamper, code] of [
  ['forged', 'envelope_invalid'],
  ['altered', 'envelope_invalid'],
  ['expired', 'envelope_expired'],
] as const) {
  test(`${tamper} envelope: the job fails with ${code} and the message is never retried`, async () => {
    const { jobId } = await submitJob(
      stack,
      lane,
      tamper === 'expired' ? { expired: true } : { tamper: tamper as 'forged' | 'altered' },
    );
    assert.deepEqual(await outcomeOf(jobId), ['rejected']);
    const job = await getJob(stack, lane, jobId);
    assert.equal(job.status, 'failed');
    assert.equal(job.error?.code, code);
    assert.equal(job.attempts, undefined, 'never claimed');
    assert.equal(job.queuedModel, undefined);
    assert.equal(job.events.at(-1)?.type, 'generation.failed');
    assert.deepEqual(await queueCounts(stack, lane.queueUrl), { visible: 0, hidden: 0 }, 'message deleted');
  });
}

test('cancel while running stops between steps: canceled with steps_completed', async () => {
  const { jobId } = await submitJob(stack, lane, { params: { width: 512, height: 512, n: 4, steps: 500 } });
  await waitFor('progress', async () => (await getJob(stack, lane, jobId)).progress);
  await stack.clients.ddb.send(
    new UpdateCommand({
      TableName: lane.res.tables.jobs,
      Key: { jobId },
      UpdateExpression: 'SET cancelRequested = :t',
      ConditionExpression: '#s = :running',
      ExpressionAttributeNames: { '#s': 'status' },
      ExpressionAttributeValues: { ':t': true, ':running': 'running' },
    }),
  );
  assert.deepEqual(await outcomeOf(jobId), ['completed']);
  const job = await getJob(stack, lane, jobId);
  assert.equal(job.status, 'canceled');
  const data = job.events.at(-1)!.data as { steps_completed: number; total_steps: number };
  assert.equal(job.events.at(-1)!.type, 'generation.canceled');
  assert.equal(data.total_steps, 500);
  assert.ok(data.steps_completed >= 1 && data.steps_completed < 500, String(data.steps_completed));
  assert.equal(job.outputs, undefined);
  assert.deepEqual(await queueCounts(stack, lane.queueUrl), { visible: 0, hidden: 0 });
});

test('image-to-image reads its input from S3', async () => {
  const input = await sharp({
    create: { width: 80, height: 100, channels: 3, background: { r: 200, g: 30, b: 90 } },
  })
    .png()
    .toBuffer();
  const params = { seed: 7, steps: 5 };
  const txt = await submitJob(stack, lane, { params });
  await outcomeOf(txt.jobId);
  // The key the edge would use; the job id inside it only has to be a safe segment here.
  const key = inputImageKey(TENANT, 'gen_input', 'png');
  await stack.clients.s3.send(
    new PutObjectCommand({ Bucket: lane.res.bucket, Key: key, Body: input, ContentType: 'image/png' }),
  );
  const img = await submitJob(stack, lane, { params: { ...params, strength: 0.5 }, inputKey: key });
  assert.deepEqual(await outcomeOf(img.jobId), ['completed']);
  const [a, b] = [await getJob(stack, lane, txt.jobId), await getJob(stack, lane, img.jobId)];
  assert.equal(b.status, 'succeeded');
  const [fa, fb] = [await body(stack, a.outputs![0]!.key), await body(stack, b.outputs![0]!.key)];
  const [ra, rb] = [await sharp(fa).raw().toBuffer(), await sharp(fb).raw().toBuffer()];
  assert.notDeepEqual(ra, rb, 'the input image changed the result');
  assert.equal((await readImageMetadata(fb))?.['strength'], 0.5);

  // A missing input object is an input error, not a retry.
  const gone = await submitJob(stack, lane, {
    params: { strength: 0.5 },
    inputKey: inputImageKey(TENANT, 'gen_missing', 'png'),
  });
  assert.deepEqual(await outcomeOf(gone.jobId), ['completed']);
  const g = await getJob(stack, lane, gone.jobId);
  assert.equal(g.status, 'failed');
  assert.equal(g.error?.code, 'input_invalid');
  assert.match(g.error!.message, /gen_missing/);
});

test('parameters the model refuses fail the job with input_invalid, without a retry', async () => {
  const { jobId } = await submitJob(stack, lane, { params: { width: 1024, height: 64 } });
  assert.deepEqual(await outcomeOf(jobId), ['completed']);
  const job = await getJob(stack, lane, jobId);
  assert.equal(job.status, 'failed');
  assert.equal(job.error?.code, 'input_invalid');
  assert.match(job.error!.message, /width/);
  assert.equal(job.attempts, 1);
  assert.deepEqual(await queueCounts(stack, lane.queueUrl), { visible: 0, hidden: 0 });
});

test('a job under another runner’s live lease waits for the lease, then is claimed', async () => {
  const { jobId } = await submitJob(stack, lane, {
    record: {
      status: 'running',
      runnerId: 'runner-elsewhere',
      leaseUntil: Date.now() + 1500,
      attempts: 1,
      startedAt: Date.now(),
    },
  });
  assert.deepEqual(await outcomeOf(jobId), ['held']);
  assert.equal((await getJob(stack, lane, jobId)).runnerId, 'runner-elsewhere');
  assert.deepEqual(
    await queueCounts(stack, lane.queueUrl),
    { visible: 0, hidden: 1 },
    'message kept, hidden',
  );
  assert.deepEqual(await outcomeOf(jobId, finished, 2), ['held', 'completed']);
  const job = await getJob(stack, lane, jobId);
  assert.equal(job.status, 'succeeded');
  assert.equal(job.runnerId, runner.runnerId);
  assert.equal(job.attempts, 2);
});

test('the DLQ sweeper fails a job whose runner died on the last attempt and keeps the message hidden', async () => {
  const { jobId } = await submitJob(stack, lane, {
    queueUrl: lane.dlqUrl,
    record: { status: 'running', runnerId: 'dead-runner', leaseUntil: Date.now() - 1000, attempts: 3 },
  });
  const job = await waitFor('the swept job', async () => {
    const j = await getJob(stack, lane, jobId);
    return j.status === 'failed' ? j : undefined;
  });
  assert.equal(job.error?.code, 'max_attempts_exceeded');
  assert.equal(job.events.at(-1)?.type, 'generation.failed');
  assert.deepEqual(await queueCounts(stack, lane.dlqUrl), { visible: 0, hidden: 1 }, 'kept for inspection');
});

test('health endpoint reports the runner', async () => {
  const res = await fetch(`http://127.0.0.1:${runner.healthPort}/healthz`);
  assert.equal(res.status, 200);
  const h = (await res.json()) as Record<string, unknown>;
  assert.equal(h['status'], 'ready');
  assert.equal(h['model'], 'tiny');
  assert.equal(h['provider'], 'cpu');
  assert.equal(h['current_job'], null);
  assert.ok((h['jobs_processed'] as number) >= 5);
  assert.equal(typeof h['uptime'], 'number');
  assert.equal((await fetch(`http://127.0.0.1:${runner.healthPort}/nope`)).status, 404);
});

test('retryable failures are redelivered; after max receives the job fails and the message goes to the DLQ', async () => {
  const retryLane = await createLane(stack, 'retry', modelDir, { maxReceives: 3 });
  // The bucket does not exist: every upload fails, a failure that retrying could fix.
  const config = runnerConfigFromEnv(retryLane.env({ [ENV.MEDIA_BUCKET]: 'bucket-that-does-not-exist' }));
  const r = await startRunner(config);
  const seen: Finished[] = [];
  watch(r, seen);
  try {
    const { jobId } = await submitJob(stack, retryLane);
    assert.deepEqual(await outcomeOf(jobId, seen, 3), ['retry', 'retry', 'exhausted']);
    const job = await getJob(stack, retryLane, jobId);
    assert.equal(job.status, 'failed');
    assert.equal(job.error?.code, 'max_attempts_exceeded');
    assert.match(job.error!.message, /3 attempts.*bucket/i);
    assert.equal(job.attempts, 3);
    const types = job.events.map((e) => e.type);
    assert.equal(types.filter((t) => t === 'generation.started').length, 3);
    assert.equal(types.at(-1), 'generation.failed');
    // SQS moves it on the next receive; the sweeper then hides it (the job is already failed).
    await waitFor('the message in the DLQ', async () => {
      const c = await queueCounts(stack, retryLane.dlqUrl);
      return c.visible + c.hidden === 1;
    });
    assert.deepEqual(await queueCounts(stack, retryLane.queueUrl), { visible: 0, hidden: 0 });
    assert.equal((await getJob(stack, retryLane, jobId)).status, 'failed');
  } finally {
    await r.stop();
  }
});

test('stop() with grace 0 releases the job in hand at once; a second runner completes it', async () => {
  const termLane = await createLane(stack, 'term', modelDir, { visibilityTimeoutSeconds: 3 });
  const a = await startRunner(runnerConfigFromEnv(termLane.env()));
  // Big enough that the second run lasts about as long as the 3 s visibility timeout, or longer.
  const { jobId } = await submitJob(stack, termLane, {
    params: { width: 512, height: 512, n: 8, steps: 500 },
  });
  await waitFor('progress', async () => (await getJob(stack, termLane, jobId)).progress);
  const t0 = Date.now();
  const stopping = a.stop('SIGTERM');
  assert.equal(a.health().status, 'stopping');
  await stopping;
  assert.ok(Date.now() - t0 < 3000, `stopped in ${Date.now() - t0} ms`);
  assert.equal(a.health().status, 'stopped');
  assert.deepEqual(await queueCounts(stack, termLane.queueUrl), { visible: 1, hidden: 0 }, 'visible again');
  const held = await getJob(stack, termLane, jobId);
  assert.equal(held.status, 'running', 'still running: only the lease was given up');
  assert.ok(held.leaseUntil! < Date.now());
  assert.equal(held.runnerId, undefined);

  const b = await startRunner(runnerConfigFromEnv(termLane.env({ [ENV.MODEL_ID]: 'tiny' })));
  const seen: Finished[] = [];
  watch(b, seen);
  let receives = 0;
  b.events.on('message_received', () => receives++);
  const beats: boolean[] = [];
  b.events.on('job_heartbeat', (e) => beats.push(e.visibilityExtended && e.leaseRenewed));
  try {
    // The heavy job takes seconds on an idle machine and far longer on a loaded one.
    assert.deepEqual(await outcomeOf(jobId, seen, 1, 120_000), ['completed']);
    assert.ok(beats.length >= 2 && beats.every(Boolean), `heartbeats ${JSON.stringify(beats)}`);
    assert.equal(receives, 1, 'heartbeats kept the message hidden: no second delivery');
    const job = await getJob(stack, termLane, jobId);
    assert.equal(job.status, 'succeeded');
    assert.equal(job.attempts, 2);
    assert.equal(job.runnerId, b.runnerId);
    assert.equal(job.outputs?.length, 8);
    const types = job.events.map((e) => e.type);
    assert.equal(types.filter((t) => t === 'generation.started').length, 2);
    assert.equal(types.at(-1), 'generation.succeeded');
  } finally {
    await b.stop();
  }
});

test('stop() within the grace period lets the job in hand finish; health says stopping meanwhile', async () => {
  const graceLane = await createLane(stack, 'grace', modelDir);
  const r = await startRunner(runnerConfigFromEnv(graceLane.env({ [RUNNER_ENV.GRACE_SECONDS]: '60' })));
  const { jobId } = await submitJob(stack, graceLane, {
    params: { width: 512, height: 512, n: 2, steps: 300 },
  });
  await waitFor('progress', async () => (await getJob(stack, graceLane, jobId)).progress);
  const stopping = r.stop('SIGTERM');
  const res = await fetch(`http://127.0.0.1:${r.healthPort}/healthz`);
  assert.equal(res.status, 503);
  assert.deepEqual(
    { ...((await res.json()) as Record<string, unknown>), uptime: 0, runner_id: '' },
    {
      status: 'stopping',
      model: 'tiny',
      provider: 'cpu',
      runner_id: '',
      jobs_processed: 0,
      current_job: jobId,
      uptime: 0,
    },
  );
  await stopping;
  assert.equal((await getJob(stack, graceLane, jobId)).status, 'succeeded');
  assert.deepEqual(await queueCounts(stack, graceLane.queueUrl), { visible: 0, hidden: 0 });
});

test('a model that cannot load fails the start with a clear error', async () => {
  const config = runnerConfigFromEnv(lane.env({ [ENV.MODEL_DIR]: join(root, 'no-model-here') }));
  await assert.rejects(startRunner(config), (err: unknown) => {
    assert.ok(err instanceof PipelineError, String(err));
    assert.equal(err.code, 'model_invalid');
    assert.match(err.message, /no-model-here/);
    return true;
  });
});
