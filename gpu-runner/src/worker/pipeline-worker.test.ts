import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { PipelineError } from '../errors.js';
import { CanceledError } from '../pipeline/denoise.js';
import { writeTinyModel } from '../tiny-model/index.js';
import { PipelineWorker } from './pipeline-worker.js';

let root: string;
let modelDir: string;
let worker: PipelineWorker;
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'sd3-worker-'));
  modelDir = (await writeTinyModel(join(root, 'tiny'))).dir;
  worker = await PipelineWorker.start({ modelDir, provider: 'cpu', t5: true });
});
after(async () => {
  await worker.close();
  await rm(root, { recursive: true, force: true });
});

test('the worker reports the model and generates with progress for every step', async () => {
  assert.equal(worker.info.dtype, 'float32');
  assert.equal(worker.info.defaultSize, 64);
  assert.equal(worker.info.hasT5, true);
  const progress: number[] = [];
  const result = await worker.generate(
    { prompt: 'a cat', seed: 1, steps: 5 },
    { onStep: (p) => progress.push(p.step) },
  );
  assert.deepEqual(progress, [1, 2, 3, 4, 5]);
  assert.equal(result.images.length, 1);
  assert.equal(result.images[0]!.rgb.length, 64 * 64 * 3);
});

test('the main thread stays free while the worker generates', async () => {
  let ticks = 0;
  const timer = setInterval(() => ticks++, 5);
  const t0 = performance.now();
  await worker.generate({ prompt: 'a cat', seed: 2, steps: 40, width: 256, height: 256 });
  const elapsed = performance.now() - t0;
  clearInterval(timer);
  // A blocked event loop would tick about once; a free one ticks throughout the run.
  assert.ok(ticks >= Math.min(10, elapsed / 20), `${ticks} ticks in ${elapsed.toFixed(0)} ms`);
});

test('an abort signal cancels between steps and reports the steps that ran', async () => {
  const controller = new AbortController();
  await assert.rejects(
    worker.generate(
      { prompt: 'a cat', seed: 3, steps: 400, width: 256, height: 256 },
      {
        signal: controller.signal,
        onStep: ({ step }) => {
          if (step === 2) controller.abort();
        },
      },
    ),
    (err: unknown) => {
      assert.ok(err instanceof CanceledError, String(err));
      assert.ok(err.stepsCompleted >= 2 && err.stepsCompleted < 400, String(err.stepsCompleted));
      assert.equal(err.totalSteps, 400);
      return true;
    },
  );
  // The worker keeps serving after a cancellation.
  const again = await worker.generate({ prompt: 'a cat', seed: 3, steps: 2 });
  assert.equal(again.stepsRun, 2);
});

test('bad parameters come back as input errors, load failures as model errors', async () => {
  await assert.rejects(worker.generate({ prompt: 'x', seed: 1, width: 70 }), (err: unknown) => {
    assert.ok(err instanceof PipelineError);
    assert.equal(err.code, 'input_invalid');
    assert.match(err.message, /width/);
    return true;
  });
  await assert.rejects(
    PipelineWorker.start({ modelDir: join(root, 'missing'), provider: 'cpu', t5: true }),
    (err: unknown) => {
      assert.ok(err instanceof PipelineError);
      assert.equal(err.code, 'model_invalid');
      return true;
    },
  );
  await assert.rejects(PipelineWorker.start({ modelDir, provider: 'cuda', t5: true }), (err: unknown) => {
    assert.ok(err instanceof PipelineError);
    assert.equal(err.code, 'provider_unavailable');
    return true;
  });
});

test('a worker thread that dies is reported once; a normal close is not a failure', async () => {
  const w = await PipelineWorker.start({ modelDir, provider: 'cpu', t5: false });
  const failures: Error[] = [];
  w.onFailure((err) => failures.push(err));
  // Simulate a crash of the thread (an abort inside onnxruntime looks the same from here).
  await (w as unknown as { worker: { terminate(): Promise<number> } }).worker.terminate();
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(failures.length, 1);
  assert.match(failures[0]!.message, /pipeline worker exited/);
  await assert.rejects(w.generate({ prompt: 'x', seed: 1, steps: 1 }), /pipeline worker exited/);

  const healthy = await PipelineWorker.start({ modelDir, provider: 'cpu', t5: false });
  const none: Error[] = [];
  healthy.onFailure((err) => none.push(err));
  await healthy.close();
  assert.deepEqual(none, []);
});
