import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ENV, RUNNER_ENV } from '@sd3/shared';
import { writeTinyModel } from '../tiny-model/index.js';
import {
  createLane,
  getJob,
  type Lane,
  type Stack,
  startStack,
  submitJob,
  waitFor,
} from './test-fixtures.js';

const BIN = fileURLToPath(new URL('../../bin/sd3-runner.js', import.meta.url));

let root: string;
let stack: Stack;
let lane: Lane;

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'sd3-runner-bin-'));
  const { dir } = await writeTinyModel(join(root, 'tiny'));
  stack = await startStack();
  lane = await createLane(stack, 'bin', dir);
});
after(async () => {
  await stack?.stop();
  await rm(root, { recursive: true, force: true });
});

function run(env: Record<string, string>): { child: ChildProcess; stdout: string[]; stderr: () => string } {
  const child = spawn(process.execPath, [BIN], { env: { PATH: process.env['PATH'] ?? '', ...env } });
  const stdout: string[] = [];
  let buffered = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    buffered += chunk;
    const lines = buffered.split('\n');
    buffered = lines.pop()!;
    stdout.push(...lines);
  });
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    err += chunk;
  });
  return { child, stdout, stderr: () => err };
}

test('sd3-runner serves jobs, logs JSON lines and exits 0 on SIGTERM', async () => {
  const { child, stdout, stderr } = run(lane.env({ [RUNNER_ENV.LOG_LEVEL]: 'info' }));
  const exited = once(child, 'exit');
  try {
    await waitFor('runner ready', () => stdout.some((l) => l.includes('"runner ready"')), 30_000);
    const { jobId } = await submitJob(stack, lane);
    await waitFor('job succeeded', async () => (await getJob(stack, lane, jobId)).status === 'succeeded');
    child.kill('SIGTERM');
    const [code] = await exited;
    assert.equal(code, 0, stderr());
    const lines = stdout.map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.ok(lines.every((l) => typeof l['ts'] === 'string' && typeof l['level'] === 'string'));
    assert.ok(lines.some((l) => l['msg'] === 'runner stopped'));
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
});

test('sd3-runner exits 2 with the variable named when the configuration is bad', async () => {
  const env = lane.env();
  delete env[ENV.JOB_QUEUE_URL];
  const { child, stderr } = run(env);
  const [code] = await once(child, 'exit');
  assert.equal(code, 2);
  assert.match(stderr(), /SD3_JOB_QUEUE_URL: is required/);
});
