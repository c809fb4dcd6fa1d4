/**
 * Model push / pull / verify against the S3 emulator (fauxqs over real HTTP), on a tiny model
 * folder: round trip, warm-cache stamp, resume of a partial download, corrupted objects and local
 * files refused with the file named, multipart uploads, and the `sd3 models` command.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { type Emulators, startEmulators } from '../../../local/emulators.js';
import { LOCAL_CREDENTIALS, LOCAL_REGION, localClients } from '../../../local/resources.js';
import { main } from '../cli/main.js';
import { isPipelineError } from '../errors.js';
import { writeTinyModel } from '../tiny-model/index.js';
import {
  buildManifest,
  MANIFEST_NAME,
  type ModelManifest,
  parseManifest,
  parseS3Uri,
  pushModel,
  SYNC_STAMP_NAME,
  syncModel,
  verifyModelDir,
} from './index.js';

let em: Emulators;
let s3: S3Client;
let root: string;
let model: string;
const bucket = 'models';

before(async () => {
  em = await startEmulators();
  s3 = localClients(em).s3;
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  root = await mkdtemp(join(tmpdir(), 'sd3-models-'));
  model = join(root, 'tiny');
  await writeTinyModel(model, { withT5: true });
});
after(async () => {
  s3.destroy();
  await em.stop();
  await rm(root, { recursive: true, force: true });
});

async function sha(path: string): Promise<string> {
  return createHash('sha256')
    .update(await readFile(path))
    .digest('hex');
}

async function assertSameFiles(a: string, b: string, paths: string[]) {
  for (const p of paths) assert.equal(await sha(join(b, p)), await sha(join(a, p)), p);
}

const src = (prefix: string) => ({ bucket, prefix });

describe('push and pull', () => {
  let paths: string[];
  let pushed: ModelManifest;
  const dest = join(tmpdir(), `sd3-pull-${process.pid}-${Date.now()}`);
  after(() => rm(dest, { recursive: true, force: true }));

  test('push uploads every file and writes the manifest last', async () => {
    const order: string[] = [];
    const { manifest, manifestKey } = await pushModel(model, src('tiny/v1'), {
      s3,
      concurrency: 4,
      onFile: (f) => order.push(f.path),
    });
    paths = manifest.files.map((f) => f.path);
    pushed = manifest;
    assert.ok(paths.includes('model_index.json'));
    assert.ok(paths.some((p) => p.startsWith('transformer/')));
    assert.equal(order.length, paths.length);
    assert.equal(manifestKey, `tiny/v1/${MANIFEST_NAME}`);
    const stored = parseManifest(
      await (
        await s3.send(new GetObjectCommand({ Bucket: bucket, Key: manifestKey }))
      ).Body!.transformToString(),
      manifestKey,
    );
    assert.deepEqual(stored.files, manifest.files);
    for (const f of manifest.files) {
      assert.equal(f.sha256, await sha(join(model, f.path)), f.path);
      assert.equal(f.size, (await stat(join(model, f.path))).size);
    }
  });

  test('pull downloads, verifies and stamps; a second pull trusts the stamp', async () => {
    const first = await syncModel(src('tiny/v1'), dest, { s3 });
    assert.deepEqual(first.downloaded, [...paths].sort());
    assert.deepEqual(first.kept, []);
    await assertSameFiles(model, dest, paths);
    await verifyModelDir(dest, first.manifest);
    // The verified manifest is left in the folder for the runner's start-up check.
    assert.deepEqual(
      parseManifest(await readFile(join(dest, MANIFEST_NAME), 'utf8'), 'local'),
      first.manifest,
    );
    const second = await syncModel(src('tiny/v1'), dest, { s3 });
    assert.equal(second.fromStamp, true);
    assert.deepEqual(second.downloaded, []);
  });

  test('resume: a missing file and an interrupted download are fetched, the rest kept', async () => {
    const [gone, cut] = paths.filter((p) => p.endsWith('.onnx') || p.endsWith('.onnx_data')).slice(-2) as [
      string,
      string,
    ];
    assert.ok(gone && cut);
    await rm(join(dest, gone));
    // An interrupted download: the first half of the file sits in <file>.partial.
    const full = await readFile(join(dest, cut));
    await rm(join(dest, cut));
    await writeFile(join(dest, `${cut}.partial`), full.subarray(0, Math.floor(full.length / 2)));
    const r = await syncModel(src('tiny/v1'), dest, { s3, concurrency: 2 });
    assert.equal(r.fromStamp, false);
    assert.deepEqual(r.downloaded, [gone, cut].sort());
    assert.equal(r.kept.length, paths.length - 2);
    await assertSameFiles(model, dest, paths);
    assert.ok(!(await readdir(join(dest, cut, '..'))).some((n) => n.endsWith('.partial')));
  });

  test('a local file changed after the sync is noticed and replaced', async () => {
    const victim = paths.find((p) => p.startsWith('vae_decoder/'))!;
    const bytes = await readFile(join(dest, victim));
    bytes[0] = bytes[0]! ^ 0xff;
    await writeFile(join(dest, victim), bytes);
    await assert.rejects(
      verifyModelDir(dest, pushed),
      (err: unknown) => isPipelineError(err) && err.code === 'model_invalid' && err.message.includes(victim),
    );
    const r = await syncModel(src('tiny/v1'), dest, { s3 });
    assert.deepEqual(r.downloaded, [victim]);
    await assertSameFiles(model, dest, paths);
  });

  test('a corrupted object in S3 is refused, naming the file; nothing half-written is left', async () => {
    await pushModel(model, src('tiny/bad'), { s3 });
    const victim = paths.find((p) => p.startsWith('text_encoder/'))!;
    const bytes = await readFile(join(model, victim));
    bytes[bytes.length - 1] = bytes[bytes.length - 1]! ^ 0x01;
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: `tiny/bad/${victim}`, Body: bytes }));
    const out = join(root, 'bad');
    await assert.rejects(syncModel(src('tiny/bad'), out, { s3 }), (err: unknown) => {
      assert.ok(isPipelineError(err));
      assert.equal(err.code, 'model_invalid');
      assert.match(err.message, new RegExp(`${victim.replace('.', '\\.')} does not match the manifest`));
      assert.match(err.message, /expected sha256 [0-9a-f]{64}, found [0-9a-f]{64}/);
      return true;
    });
    await assert.rejects(stat(join(out, victim)));
    await assert.rejects(stat(join(out, `${victim}.partial`)));
    await assert.rejects(stat(join(out, SYNC_STAMP_NAME)));
  });

  test('a truncated object is refused with the sizes', async () => {
    await pushModel(model, src('tiny/short'), { s3 });
    const victim = 'model_index.json';
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: `tiny/short/${victim}`, Body: '{}' }));
    await assert.rejects(
      syncModel(src('tiny/short'), join(root, 'short'), { s3 }),
      (err: unknown) =>
        isPipelineError(err) &&
        err.code === 'model_invalid' &&
        /model_index\.json .*expected \d+ bytes, found 2/.test(err.message),
    );
  });

  test('no manifest: refused as model_invalid naming the location', async () => {
    await assert.rejects(
      syncModel(src('nothing/here'), join(root, 'none'), { s3 }),
      (err: unknown) =>
        isPipelineError(err) &&
        err.code === 'model_invalid' &&
        err.message.includes('s3://models/nothing/here/manifest.json'),
    );
  });
});

describe('multipart', () => {
  test('a file above the threshold goes up in parts and comes back identical', async () => {
    const dir = join(root, 'big');
    const data = Buffer.alloc(11 * 1024 * 1024 + 123);
    for (let i = 0; i < data.length; i += 4096) data[i] = (i / 4096) & 0xff;
    await rm(dir, { recursive: true, force: true });
    await import('node:fs/promises').then((fs) => fs.mkdir(join(dir, 'w'), { recursive: true }));
    await writeFile(join(dir, 'w', 'weights.bin'), data);
    await writeFile(join(dir, 'config.json'), '{}');
    const { manifest } = await pushModel(dir, src('big'), {
      s3,
      multipartThreshold: 6 * 1024 * 1024,
      partSize: 5 * 1024 * 1024,
    });
    assert.equal(manifest.totalBytes, data.length + 2);
    const out = join(root, 'big-out');
    await syncModel(src('big'), out, { s3 });
    assert.ok((await readFile(join(out, 'w', 'weights.bin'))).equals(data));
  });
});

describe('manifest', () => {
  test('paths that could leave the folder are refused', () => {
    const base = { version: 1, createdAt: 'x', totalBytes: 1 };
    for (const path of ['../etc/passwd', '/abs', 'a/../../b', 'a\\b', 'a//b']) {
      assert.throws(
        () =>
          parseManifest(
            JSON.stringify({ ...base, files: [{ path, size: 1, sha256: 'a'.repeat(64) }] }),
            'm.json',
          ),
        (err: unknown) =>
          isPipelineError(err) && err.code === 'model_invalid' && err.message.startsWith('m.json:'),
        path,
      );
    }
  });

  test('the manifest skips sync artifacts and lists files sorted', async () => {
    const dir = join(root, 'artifacts');
    await import('node:fs/promises').then((fs) => fs.mkdir(join(dir, 'b'), { recursive: true }));
    await writeFile(join(dir, 'b', 'x.onnx'), 'x');
    await writeFile(join(dir, 'a.json'), 'a');
    await writeFile(join(dir, SYNC_STAMP_NAME), '{}');
    await writeFile(join(dir, 'b', 'y.onnx.partial'), 'y');
    await writeFile(join(dir, MANIFEST_NAME), '{}');
    const m = await buildManifest(dir);
    assert.deepEqual(
      m.files.map((f) => f.path),
      ['a.json', 'b/x.onnx'],
    );
  });

  test('s3 URIs', () => {
    assert.deepEqual(parseS3Uri('s3://my-bucket/sd3/medium/'), { bucket: 'my-bucket', prefix: 'sd3/medium' });
    assert.deepEqual(parseS3Uri('s3://my-bucket'), { bucket: 'my-bucket', prefix: '' });
    assert.throws(() => parseS3Uri('https://x/y'));
    assert.throws(() => parseS3Uri('s3://b/../x'));
  });
});

describe('sd3 models (CLI)', () => {
  const saved: Record<string, string | undefined> = {};
  const env = {
    AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
    AWS_REGION: LOCAL_REGION,
  };
  before(() => {
    for (const [k, v] of Object.entries(env)) {
      saved[k] = process.env[k];
      process.env[k] = v;
    }
  });
  after(() => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });

  async function run(args: string[]) {
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    const chunks = { out: '', err: '' };
    stdout.on('data', (c) => (chunks.out += c));
    stderr.on('data', (c) => (chunks.err += c));
    const code = await main(args, { stdout, stderr });
    return { code, ...chunks };
  }

  test('push, pull, verify; a corrupted local file fails verify with exit 2', async () => {
    const uri = 's3://models/cli/tiny';
    const push = await run(['models', 'push', model, uri, '--endpoint', em.s3Endpoint]);
    assert.equal(push.code, 0, push.err);
    const pushed = JSON.parse(push.out);
    assert.equal(pushed.manifest, `${uri}/manifest.json`);
    const out = join(root, 'cli-out');
    const pull = await run(['models', 'pull', uri, out, '--endpoint', em.s3Endpoint, '--concurrency', '3']);
    assert.equal(pull.code, 0, pull.err);
    assert.equal(JSON.parse(pull.out).downloaded, pushed.files);
    // verify reads the folder's own manifest: copy it in, then damage a file.
    const manifestText = await (
      await s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'cli/tiny/manifest.json' }))
    ).Body!.transformToString();
    await writeFile(join(out, MANIFEST_NAME), manifestText);
    const ok = await run(['models', 'verify', out]);
    assert.equal(ok.code, 0, ok.err);
    await truncate(join(out, 'model_index.json'), 3);
    const bad = await run(['models', 'verify', out]);
    assert.equal(bad.code, 2);
    assert.match(bad.err, /model_index\.json .*expected \d+ bytes, found 3/);
  });

  test('usage errors exit 2', async () => {
    assert.equal((await run(['models', 'push', model])).code, 2);
    assert.equal((await run(['models', 'pull', 'not-a-uri', 'x'])).code, 2);
    assert.equal((await run(['models', 'frobnicate'])).code, 2);
    assert.equal((await run(['models', '--help'])).code, 0);
  });
});
