import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CreateQueueCommand, type Message, SendMessageCommand } from '@aws-sdk/client-sqs';
import { startEmulators } from '../../../local/emulators.js';
import { LOCAL_CREDENTIALS, localClients } from '../../../local/resources.js';
import { QueueConsumer, RunnerEvents } from './queue-consumer.js';
import { waitFor } from './test-fixtures.js';

test('the consumer backs off while the queue is unreachable and reconnects when it is back', async () => {
  process.env['AWS_ACCESS_KEY_ID'] = LOCAL_CREDENTIALS.accessKeyId;
  process.env['AWS_SECRET_ACCESS_KEY'] = LOCAL_CREDENTIALS.secretAccessKey;
  // Learn a port and the queue URL the emulator gives, then take the emulator down.
  const first = await startEmulators();
  const port = Number(new URL(first.sqsEndpoint).port);
  const probe = localClients(first).sqs;
  const { QueueUrl } = await probe.send(new CreateQueueCommand({ QueueName: 'reconnect' }));
  probe.destroy();
  await first.stop();

  const { sqs } = localClients(first);
  const events = new RunnerEvents();
  const errors: number[] = [];
  events.on('error', () => errors.push(Date.now()));
  const handled: Message[] = [];
  const consumer = new QueueConsumer({
    sqs,
    queueUrl: QueueUrl!,
    waitTimeSeconds: 1,
    visibilityTimeoutSeconds: 5,
    handleMessage: async (m) => {
      handled.push(m);
    },
    events,
    backoffMinMs: 100,
    backoffMaxMs: 1000,
  });
  const loop = consumer.start();
  let second: Awaited<ReturnType<typeof startEmulators>> | undefined;
  try {
    await waitFor('receive errors', () => errors.length >= 4);
    // Gaps are the SDK's own retries plus the consumer's backoff (100, 200, 400 ms).
    const gaps = errors.slice(1, 4).map((t, i) => t - errors[i]!);
    assert.ok(gaps[2]! - gaps[0]! >= 150, `backoff grows: ${gaps.join(', ')} ms`);

    second = await startEmulators({ fauxqsPort: port });
    const again = await sqs.send(new CreateQueueCommand({ QueueName: 'reconnect' }));
    assert.equal(again.QueueUrl, QueueUrl);
    await sqs.send(
      new SendMessageCommand({
        QueueUrl,
        MessageBody: 'hello',
        MessageAttributes: { jobId: { DataType: 'String', StringValue: 'gen_1' } },
      }),
    );
    await waitFor('the message', () => handled.length === 1, 15_000);
    assert.equal(handled[0]!.Body, 'hello');
    assert.equal(handled[0]!.Attributes?.['ApproximateReceiveCount'], '1');
    assert.equal(handled[0]!.MessageAttributes?.['jobId']?.StringValue, 'gen_1');
  } finally {
    // stop() aborts the long poll in flight instead of waiting for it.
    const t0 = Date.now();
    await consumer.stop();
    await loop;
    assert.ok(Date.now() - t0 < 500, `stopped in ${Date.now() - t0} ms`);
    sqs.destroy();
    await second?.stop();
  }
});
