import assert from 'node:assert/strict';
import { mkdtemp, open, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { ENV, RUNNER_ENV } from '@sd3/shared';
import { PipelineError } from '../errors.js';
import { MANIFEST_NAME, parseManifest } from '../models/manifest.js';
import { writeTinyModel } from '../tiny-model/index.js';
import { ConfigError, runnerConfigFromEnv } from './config.js';
import { verifyModelAtStart } from './model-verify.js';

let root: string;
let model: string;

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'sd3-model-verify-'));
  model = join(root, 'tiny');
  await writeTinyModel(model, { manifest: true });
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

const ON = { mode: 'manifest', requireManifest: false } as const;

async function flipByte(file: string, at: (size: number) => number): Promise<void> {
  const handle = await open(file, 'r+');
  try {
    const position = at((await handle.stat()).size);
    const byte = Buffer.alloc(1);
    await handle.read(byte, 0, 1, position);
    byte[0] = byte[0]! ^ 0x80;
    await handle.write(byte, 0, 1, position);
  } finally {
    await handle.close();
  }
}

async function modelInvalid(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof PipelineError, String(err));
    assert.equal(err.code, 'model_invalid');
    return err.message;
  }
  assert.fail('expected model_invalid');
}

test('the tiny model writer can write a manifest covering every file of the folder', async () => {
  const manifest = parseManifest(await readFile(join(model, MANIFEST_NAME), 'utf8'), MANIFEST_NAME);
  const paths = manifest.files.map((f) => f.path);
  for (const p of ['model_index.json', 'transformer/model.onnx', 'transformer/model.onnx_data']) {
    assert.ok(paths.includes(p), p);
  }
  assert.ok(!paths.includes(MANIFEST_NAME));
  const result = await verifyModelAtStart(model, ON);
  assert.equal(result.verified, true);
  assert.equal(result.verified && result.files, manifest.files.length);
  assert.equal(result.verified && result.bytes, manifest.totalBytes);
});

test('one flipped byte inside the weights is refused, naming the file and both hashes', async () => {
  const copy = join(root, 'flipped');
  await writeTinyModel(copy, { manifest: true });
  const file = 'transformer/model.onnx_data';
  const expected = parseManifest(await readFile(join(copy, MANIFEST_NAME), 'utf8'), MANIFEST_NAME).files.find(
    (f) => f.path === file,
  )!.sha256;
  await flipByte(join(copy, file), (size) => Math.floor(size / 3));
  const message = await modelInvalid(verifyModelAtStart(copy, ON));
  assert.match(message, new RegExp(`^model file ${file} does not match the manifest`));
  assert.ok(message.includes(`expected sha256 ${expected}, found `), message);
  const found = /found ([0-9a-f]{64})$/.exec(message)?.[1];
  assert.ok(found && found !== expected, message);
  // Off: the same folder is not checked at all.
  assert.deepEqual(await verifyModelAtStart(copy, { mode: 'off', requireManifest: false }), {
    verified: false,
    reason: 'off',
  });
});

test('a missing or truncated file, and a broken manifest, are refused', async () => {
  const copy = join(root, 'damaged');
  await writeTinyModel(copy, { manifest: true });
  await unlink(join(copy, 'vae_decoder', 'model.onnx'));
  assert.match(
    await modelInvalid(verifyModelAtStart(copy, ON)),
    /model file vae_decoder\/model\.onnx is missing from/,
  );
  const truncated = join(root, 'truncated');
  await writeTinyModel(truncated, { manifest: true });
  await writeFile(join(truncated, 'text_encoder', 'config.json'), '{}');
  assert.match(
    await modelInvalid(verifyModelAtStart(truncated, ON)),
    /model file text_encoder\/config\.json does not match the manifest .*: expected \d+ bytes, found 2$/,
  );
  await writeFile(join(truncated, MANIFEST_NAME), '{"version":1}');
  assert.match(await modelInvalid(verifyModelAtStart(truncated, ON)), /manifest\.json: /);
});

test('without a manifest: started unverified, or refused when one is required', async () => {
  const bare = join(root, 'bare');
  await writeTinyModel(bare);
  assert.deepEqual(await verifyModelAtStart(bare, ON), { verified: false, reason: 'no manifest' });
  const message = await modelInvalid(verifyModelAtStart(bare, { mode: 'manifest', requireManifest: true }));
  assert.ok(message.includes(`the model folder ${bare} has no ${MANIFEST_NAME}`), message);
});

test('config: verify by manifest by default, manifest optional; requiring one with verification off is refused', () => {
  const base = {
    [ENV.JOB_QUEUE_URL]: 'http://127.0.0.1:4566/000000000000/jobs',
    [ENV.DLQ_URL]: 'http://127.0.0.1:4566/000000000000/dlq',
    [ENV.JOBS_TABLE]: 'jobs',
    [ENV.MEDIA_BUCKET]: 'media',
    [ENV.SIGNING_KEYS]: JSON.stringify({ k1: Buffer.alloc(32, 1).toString('base64') }),
    [ENV.MODEL_ID]: 'tiny',
    [ENV.MODEL_DIR]: '/models/tiny',
  };
  const c = runnerConfigFromEnv(base);
  assert.equal(c.verifyModel, 'manifest');
  assert.equal(c.requireManifest, false);
  const strict = runnerConfigFromEnv({ ...base, [RUNNER_ENV.REQUIRE_MANIFEST]: 'true' });
  assert.equal(strict.requireManifest, true);
  assert.equal(runnerConfigFromEnv({ ...base, [RUNNER_ENV.VERIFY_MODEL]: 'off' }).verifyModel, 'off');
  assert.throws(
    () => runnerConfigFromEnv({ ...base, [RUNNER_ENV.VERIFY_MODEL]: 'sha1' }),
    (err: unknown) =>
      err instanceof ConfigError &&
      err.message.includes(`${RUNNER_ENV.VERIFY_MODEL}: must be one of manifest, off, got "sha1"`),
  );
  assert.throws(
    () =>
      runnerConfigFromEnv({
        ...base,
        [RUNNER_ENV.VERIFY_MODEL]: 'off',
        [RUNNER_ENV.REQUIRE_MANIFEST]: 'true',
      }),
    (err: unknown) =>
      err instanceof ConfigError &&
      err.message.includes(
        `${RUNNER_ENV.REQUIRE_MANIFEST}: cannot be true while ${RUNNER_ENV.VERIFY_MODEL} is off`,
      ),
  );
});
