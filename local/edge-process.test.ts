import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { startEdgeProcess } from './edge-process.js';
import { type LocalStack, startLocalStack } from './stack.js';

let dir: string;
let stack: LocalStack;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sd3-edge-process-'));
  stack = await startLocalStack({
    tinyModelDir: join(dir, 'tiny'),
    startRunner: false,
    edgeLogs: false,
    edgeProcess: true,
  });
});

after(async () => {
  await stack?.stop();
  await rm(dir, { recursive: true, force: true });
});

test('the edge serves the API from its own process', async () => {
  assert.notEqual(stack.edgePid, process.pid);
  const health = await fetch(`${stack.url}/healthz`);
  assert.equal(health.status, 200);
  const models = await fetch(`${stack.url}/v1/models`, {
    headers: { authorization: `Bearer ${stack.apiKey.token}` },
  });
  assert.equal(models.status, 200);
  const body = (await models.json()) as { data: { id: string }[] };
  assert.deepEqual(
    body.data.map((m) => m.id),
    [stack.model.id],
  );
});

test('a bad edge environment fails the start with the variable named', async () => {
  await assert.rejects(
    startEdgeProcess({ SD3_JOBS_TABLE: '' }, { logs: false, notifier: false }),
    /exited with code 1[\s\S]*invalid edge environment[\s\S]*SD3_JOBS_TABLE/,
  );
});
