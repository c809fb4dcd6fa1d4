import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { DeleteMessageCommand, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { type EventsQueueMessage, EventsQueueMessageSchema } from '@sd3/shared';
import { EventPublisher } from './event-publisher.js';
import { DynamoJobStore } from './job-store.js';
import { createLogger } from './logger.js';
import { createLane, type Lane, type Stack, startStack, submitJob, TENANT } from './test-fixtures.js';

let stack: Stack;
let lane: Lane;
const lines: string[] = [];
const log = createLogger({ level: 'debug', write: (l) => lines.push(l) });

before(async () => {
  stack = await startStack();
  lane = await createLane(stack, 'events', 'unused-model-dir');
});
after(async () => {
  await stack?.stop();
});

function storeWith(publisher: EventPublisher) {
  return new DynamoJobStore({
    ddb: stack.clients.ddb,
    table: lane.res.tables.jobs,
    runnerId: 'r1',
    leaseMs: 60_000,
    onEvent: (record, event) => publisher.publish(record, event),
  });
}

async function drainEvents(): Promise<EventsQueueMessage[]> {
  const out: EventsQueueMessage[] = [];
  for (;;) {
    const got = await stack.clients.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: lane.res.eventsQueueUrl,
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: 0,
      }),
    );
    if (!got.Messages?.length) return out.sort((a, b) => a.event.id.localeCompare(b.event.id));
    for (const m of got.Messages) {
      out.push(EventsQueueMessageSchema.parse(JSON.parse(m.Body!)));
      await stack.clients.sqs.send(
        new DeleteMessageCommand({ QueueUrl: lane.res.eventsQueueUrl, ReceiptHandle: m.ReceiptHandle! }),
      );
    }
  }
}

async function runJob(publisher: EventPublisher, record: Record<string, unknown>): Promise<string> {
  const { jobId } = await submitJob(stack, lane, { record });
  const store = storeWith(publisher);
  assert.equal((await store.claim(jobId, { tenantId: TENANT })).kind, 'claimed');
  await store.progress(jobId, 1, 4);
  assert.equal(await store.finishSucceeded(jobId, [], { total_ms: 5 }, 4), true);
  await publisher.flush();
  return jobId;
}

test('the runner sends the events the job webhook wants (default: the terminal one)', async () => {
  const publisher = new EventPublisher(stack.clients.sqs, lane.res.eventsQueueUrl, log);
  const jobId = await runJob(publisher, { webhookUrl: 'https://hooks.example.com/a' });
  const sent = await drainEvents();
  assert.deepEqual(
    sent.map((m) => m.event.type),
    ['generation.succeeded'],
  );
  const m = sent[0]!;
  assert.equal(m.job_id, jobId);
  assert.equal(m.tenant_id, TENANT);
  assert.equal(m.webhook_url, 'https://hooks.example.com/a');
  assert.equal(m.event.id, `${jobId}.0003`, 'the stable event id of the record');

  const filtered = await runJob(publisher, {
    webhookUrl: 'https://hooks.example.com/b',
    webhookEvents: ['generation.started', 'generation.progress'],
  });
  assert.deepEqual(
    (await drainEvents()).map((x) => [x.job_id, x.event.type]),
    [
      [filtered, 'generation.started'],
      [filtered, 'generation.progress'],
    ],
  );

  await runJob(publisher, {});
  assert.deepEqual(await drainEvents(), [], 'no webhook_url: nothing is sent');
});

test('a failing events queue is logged and never breaks the job flow', async () => {
  const broken = new EventPublisher(stack.clients.sqs, `${lane.res.eventsQueueUrl}-missing`, log);
  const jobId = await runJob(broken, { webhookUrl: 'https://hooks.example.com/c' });
  assert.ok(
    lines.some((l) => l.includes('could not send the event') && l.includes(jobId)),
    'the failure is logged with the job id',
  );
});
