/**
 * The tiny model's `staticLatentSize` option: a transformer that loads and runs at one latent size
 * only, like an export with static shapes, so fault tests get a real, deterministic onnxruntime
 * failure for every other size (retryable 'internal', never 'input_invalid').
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { PipelineError } from '../errors.js';
import { Sd3Pipeline } from '../pipeline/sd3-pipeline.js';
import { writeTinyModel } from './write-tiny-model.js';

let root: string;
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'sd3-tiny-static-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

test('a static-size transformer runs at its size and fails inside onnxruntime at any other', async () => {
  const info = await writeTinyModel(join(root, 'static'), { staticLatentSize: [8, 8] });
  const pipe = await Sd3Pipeline.load(info.dir, { provider: 'cpu' });
  try {
    const ok = await pipe.generate({ prompt: 'fits', seed: 1, steps: 2, width: 64, height: 64 });
    assert.deepEqual(ok.latentDims, [1, 16, 8, 8]);
    for (const [width, height] of [
      [80, 80],
      [64, 128],
    ] as const) {
      await assert.rejects(
        pipe.generate({ prompt: 'poison', seed: 1, steps: 2, width, height }),
        (err: unknown) => {
          assert.ok(err instanceof PipelineError, String(err));
          assert.equal(err.code, 'internal');
          assert.match(err.message, /onnxruntime failed running .*transformer/);
          return true;
        },
      );
    }
    // The failure leaves the pipeline usable.
    const again = await pipe.generate({ prompt: 'fits', seed: 1, steps: 2, width: 64, height: 64 });
    assert.deepEqual(again.images[0]!.rgb, ok.images[0]!.rgb);
  } finally {
    await pipe.release();
  }
});

test('staticLatentSize is validated', async () => {
  for (const [options, pattern] of [
    [{ staticLatentSize: [8] }, /staticLatentSize: expected \[height, width\]/],
    [{ staticLatentSize: [8, 0] }, /staticLatentSize: expected \[height, width\]/],
    [
      { staticLatentSize: [8, 8], transformerKind: 'linear' },
      /needs transformerKind 'mixing', found 'linear'/,
    ],
  ] as const) {
    await assert.rejects(
      writeTinyModel(join(root, 'refused'), options as unknown as Parameters<typeof writeTinyModel>[1]),
      (err: unknown) =>
        err instanceof PipelineError && err.code === 'input_invalid' && pattern.test(err.message),
    );
  }
});
