/** Live previews end to end in the runner: the tiny model over the emulators. */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { DeleteMessageCommand, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import {
  type EventsQueueMessage,
  EventsQueueMessageSchema,
  type JobRecord,
  type NormalizedParams,
} from '@sd3/shared';
import sharp from 'sharp';
import { PREVIEW_MAX_BYTES } from '../image/preview-image.js';
import { writeTinyModel } from '../tiny-model/index.js';
import { runnerConfigFromEnv } from './config.js';
import { createLogger } from './logger.js';
import { type RunnerHandle, startRunner } from './runner.js';
import {
  createLane,
  getJob,
  type Lane,
  type Stack,
  startStack,
  submitJob,
  waitFor,
} from './test-fixtures.js';

let root: string;
let stack: Stack;
let lane: Lane;
let runner: RunnerHandle;
const done = new Set<string>();
const collected: EventsQueueMessage[] = [];

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'sd3-previews-'));
  const modelDir = (await writeTinyModel(join(root, 'tiny'))).dir;
  stack = await startStack();
  lane = await createLane(stack, 'previews', modelDir);
  runner = await startRunner(runnerConfigFromEnv(lane.env()), {
    logger: createLogger({ level: 'warn', write: () => {} }),
  });
  runner.events.on('job_finished', (e) => done.add(e.jobId));
});

after(async () => {
  await runner?.stop('test over');
  await stack?.stop();
  await rm(root, { recursive: true, force: true });
});

async function run(params: Partial<NormalizedParams>, record: Partial<JobRecord> = {}): Promise<JobRecord> {
  const { jobId } = await submitJob(stack, lane, { params: { width: 64, height: 64, ...params }, record });
  await waitFor(`job ${jobId}`, () => done.has(jobId), 30_000);
  const job = await getJob(stack, lane, jobId);
  assert.equal(job.status, 'succeeded');
  return job;
}

async function drainEvents(): Promise<EventsQueueMessage[]> {
  const out: EventsQueueMessage[] = [];
  for (;;) {
    const got = await stack.clients.sqs.send(
      new ReceiveMessageCommand({ QueueUrl: lane.res.eventsQueueUrl, MaxNumberOfMessages: 10 }),
    );
    if (!got.Messages?.length) return out;
    for (const m of got.Messages) {
      out.push(EventsQueueMessageSchema.parse(JSON.parse(m.Body!)));
      await stack.clients.sqs.send(
        new DeleteMessageCommand({ QueueUrl: lane.res.eventsQueueUrl, ReceiptHandle: m.ReceiptHandle! }),
      );
    }
  }
}

test('previews: true stores the latest preview as a small JPEG and records preview events', async () => {
  const job = await run({ steps: 8, previews: true });
  const previews = job.events.filter((e) => e.type === 'generation.preview');
  assert.ok(previews.length >= 1, job.events.map((e) => e.type).join(' '));
  assert.ok(previews.length <= 7, 'at most one per step before the last');
  for (const e of previews) {
    assert.deepEqual(Object.keys(e.data).sort(), ['step', 'total_steps'], 'the image stays off the events');
    assert.equal(e.data['total_steps'], 8);
    assert.ok((e.data['step'] as number) < 8, 'none after the final step');
  }
  const p = job.preview!;
  assert.ok(p, 'the job keeps its latest preview');
  assert.equal(p.step, previews.at(-1)!.data['step'], 'the record holds the latest preview event’s image');
  assert.equal(p.totalSteps, 8);
  assert.equal(p.mime, 'image/jpeg');
  const file = Buffer.from(p.data, 'base64');
  assert.ok(file.length <= PREVIEW_MAX_BYTES);
  const meta = await sharp(file).metadata();
  // The tiny model's 64x64 image has an 8x8 latent: the preview is at latent resolution.
  assert.deepEqual([meta.format, meta.width, meta.height], ['jpeg', p.width, p.height]);
  assert.deepEqual([p.width, p.height], [8, 8]);
});

test('without previews no preview is made', async () => {
  const job = await run({ steps: 8 });
  assert.equal(job.preview, undefined);
  assert.ok(!job.events.some((e) => e.type === 'generation.preview'));
  assert.ok(job.events.some((e) => e.type === 'generation.progress'));
});

test('webhooks get preview events only when webhook_events asks for them, and never the image', async () => {
  await drainEvents();
  const url = 'https://hooks.example.test/sd3';
  const plain = await run({ steps: 6, previews: true }, { webhookUrl: url });
  const opted = await run(
    { steps: 6, previews: true },
    { webhookUrl: url, webhookEvents: ['generation.preview', 'generation.succeeded'] },
  );
  assert.ok(plain.events.some((e) => e.type === 'generation.preview'));
  const sent = await waitFor('the succeeded events of both jobs', async () => {
    const all = [...(await drainEvents()), ...collected];
    collected.splice(0, collected.length, ...all);
    const succeeded = all.filter((m) => m.event.type === 'generation.succeeded').length;
    return succeeded >= 2 ? all : undefined;
  });
  const typesOf = (jobId: string) => sent.filter((m) => m.job_id === jobId).map((m) => m.event.type);
  assert.deepEqual(typesOf(plain.jobId), ['generation.succeeded'], 'default: terminal events only');
  const optedTypes = typesOf(opted.jobId);
  assert.ok(optedTypes.includes('generation.preview'), optedTypes.join(' '));
  for (const m of sent.filter((x) => x.event.type === 'generation.preview')) {
    assert.equal(m.event.data['image'], undefined);
  }
});
