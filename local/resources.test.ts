import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DescribeTableCommand } from '@aws-sdk/client-dynamodb';
import { GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import { ENV } from '@sd3/shared';
import { startEmulators } from './emulators.js';
import { createLocalResources, localClients } from './resources.js';

test('the emulators start on loopback and hold the stack resources', async () => {
  const em = await startEmulators();
  try {
    const res = await createLocalResources(em, { models: ['sd3-medium', 'tiny'] });
    const { sqs, dynamodb } = localClients(em);
    const jobs = await dynamodb.send(new DescribeTableCommand({ TableName: res.tables.jobs }));
    assert.deepEqual(jobs.Table!.GlobalSecondaryIndexes!.map((i) => i.IndexName).sort(), [
      'byTenant',
      'openByModel',
      'queuedByModel',
    ]);
    const attrs = await sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: res.queues['tiny']!.url, AttributeNames: ['All'] }),
    );
    assert.equal(JSON.parse(attrs.Attributes!['RedrivePolicy']!).maxReceiveCount, 3);
    assert.deepEqual(Object.keys(JSON.parse(res.env[ENV.JOB_QUEUES]!)), ['sd3-medium', 'tiny']);
    sqs.destroy();
    dynamodb.destroy();
  } finally {
    await em.stop();
  }
});
