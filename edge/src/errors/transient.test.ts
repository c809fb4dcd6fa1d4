/**
 * transientKind() on the errors the real SDK raises: DynamoDB faults injected on the wire by the
 * fault proxy in front of dynalite, a closed port, and ordinary client errors that must stay 4xx/500.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { CreateTableCommand, DynamoDBClient, GetItemCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { type Emulators, startEmulators } from '../../../local/emulators.js';
import { type FaultProxy, startDynamoFaultProxy } from '../../../local/fault-proxy.js';
import { LOCAL_CREDENTIALS, LOCAL_REGION } from '../../../local/resources.js';
import { freePort } from '../../../local/runner-process.js';
import { retryAfterSeconds, transientKind } from './transient.js';

let em: Emulators;
let proxy: FaultProxy;
let client: DynamoDBClient;

before(async () => {
  em = await startEmulators();
  proxy = await startDynamoFaultProxy(em.dynamodbEndpoint);
  // One attempt: the proxy's fault is what the caller sees.
  client = new DynamoDBClient({
    region: LOCAL_REGION,
    credentials: LOCAL_CREDENTIALS,
    endpoint: proxy.endpoint,
    maxAttempts: 1,
  });
  await client.send(
    new CreateTableCommand({
      TableName: 'faults',
      BillingMode: 'PAY_PER_REQUEST',
      AttributeDefinitions: [{ AttributeName: 'id', AttributeType: 'S' }],
      KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }],
    }),
  );
});
after(async () => {
  client.destroy();
  await proxy.close();
  await em.stop();
});

async function errorOf(run: () => Promise<unknown>): Promise<unknown> {
  try {
    await run();
  } catch (err) {
    return err;
  }
  assert.fail('expected the call to fail');
}

const get = () => client.send(new GetItemCommand({ TableName: 'faults', Key: { id: { S: 'x' } } }));

test('throttling, provisioned throughput, 500 and a reset connection are transient', async () => {
  for (const [fault, kind, name] of [
    ['throttling', 'throttled', 'ThrottlingException'],
    ['provisioned', 'throttled', 'ProvisionedThroughputExceededException'],
    ['internal', 'server', 'InternalServerError'],
    ['reset', 'network', undefined],
  ] as const) {
    proxy.setRule({ rate: 1, faults: [fault] });
    const err = await errorOf(get);
    if (name) assert.equal((err as Error).name, name);
    assert.equal(transientKind(err), kind, `${fault}: ${String(err)}`);
  }
  proxy.setRule(null);
  assert.ok(retryAfterSeconds('throttled') >= 1 && retryAfterSeconds('network') >= 1);
});

test('faults only hit the named operations, and "after" faults apply the write first', async () => {
  proxy.setRule({ rate: 1, operations: ['PutItem'], faults: ['internal'], when: 'after' });
  assert.equal((await get()).Item, undefined);
  const put = () => client.send(new PutItemCommand({ TableName: 'faults', Item: { id: { S: 'x' } } }));
  assert.equal(transientKind(await errorOf(put)), 'server');
  proxy.setRule(null);
  assert.deepEqual((await get()).Item, { id: { S: 'x' } }, 'the write happened although its answer was lost');
  const stats = proxy.stats();
  assert.ok(stats.ambiguous >= 1 && stats.byOperation['PutItem']! >= 1, JSON.stringify(stats));
});

test('a burst repeats the drawn fault for the following requests of that operation', async () => {
  proxy.setRule({ rate: 0, burst: 3 });
  assert.equal((await get()).Item?.['id']?.S, 'x', 'rate 0 injects nothing');
  proxy.setRule({ rate: 1, faults: ['throttling'], burst: 3 });
  const first = proxy.stats().injected;
  for (let i = 0; i < 3; i++) assert.equal(transientKind(await errorOf(get)), 'throttled');
  assert.equal(proxy.stats().injected - first, 3);
  proxy.setRule(null);
  assert.throws(() => proxy.setRule({ rate: 2 }), /rate/);
  assert.throws(() => proxy.setRule({ rate: 0.5, burst: 0 }), /burst/);
  assert.throws(() => proxy.setRule({ rate: 0.5, faults: ['nope' as 'reset'] }), /unknown fault/);
});

test('a closed port is a network failure; client errors and bugs are not transient', async () => {
  const closed = new DynamoDBClient({
    region: LOCAL_REGION,
    credentials: LOCAL_CREDENTIALS,
    endpoint: `http://127.0.0.1:${await freePort()}`,
    maxAttempts: 1,
  });
  try {
    assert.equal(
      transientKind(
        await errorOf(() =>
          closed.send(new GetItemCommand({ TableName: 'faults', Key: { id: { S: 'x' } } })),
        ),
      ),
      'network',
    );
  } finally {
    closed.destroy();
  }
  const missing = await errorOf(() =>
    client.send(new GetItemCommand({ TableName: 'nope', Key: { id: { S: 'x' } } })),
  );
  assert.equal((missing as Error).name, 'ResourceNotFoundException');
  assert.equal(transientKind(missing), null);
  const conditional = await errorOf(() =>
    client.send(
      new PutItemCommand({
        TableName: 'faults',
        Item: { id: { S: 'x' } },
        ConditionExpression: 'attribute_not_exists(id)',
      }),
    ),
  );
  assert.equal(transientKind(conditional), null);
  assert.equal(transientKind(new TypeError('x is undefined')), null);
  assert.equal(transientKind(undefined), null);
  // Wrapped: the cause chain is followed.
  assert.equal(
    transientKind(new Error('outer', { cause: Object.assign(new Error('inner'), { code: 'ECONNRESET' }) })),
    'network',
  );
});
