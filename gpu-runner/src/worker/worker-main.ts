/**
 * Runs inside the worker thread: onnxruntime's run() is a blocking native call, so the sessions
 * live here and the main thread stays free for polling, heartbeats and health checks.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { isPipelineError } from '../errors.js';
import { CanceledError, type LatentSnapshot } from '../pipeline/denoise.js';
import { latentPreviewRgb } from '../pipeline/latent-preview.js';
import { Sd3Pipeline } from '../pipeline/sd3-pipeline.js';
import type { FromWorker, SerializedError, ToWorker, WorkerInit } from './protocol.js';

const port = parentPort!;
const init = workerData as WorkerInit;
const send = (msg: FromWorker, transfer: ArrayBuffer[] = []) => port.postMessage(msg, transfer);

/** A preview of the first image; a failure (say, a model without 16 latent channels) only costs the preview. */
function sendPreview(id: number, s: LatentSnapshot): void {
  try {
    const [, c, h, w] = s.dims;
    const frame = latentPreviewRgb({
      dtype: s.dtype,
      dims: [c, h, w],
      latent: s.latent,
      previous: { latent: s.previous, sigma: s.sigma, sigmaNext: s.sigmaNext },
    });
    const preview = { ...frame, step: s.step, totalSteps: s.totalSteps };
    send({ type: 'preview', id, preview }, [frame.rgb.buffer as ArrayBuffer]);
  } catch {
    // Previews are best effort; the generation goes on.
  }
}

function serialize(err: unknown): SerializedError {
  if (err instanceof CanceledError)
    return { code: 'canceled', message: err.message, stepsCompleted: err.stepsCompleted };
  if (isPipelineError(err)) return { code: err.code, message: err.message };
  return { code: 'internal', message: err instanceof Error ? err.message : String(err) };
}

async function main(): Promise<void> {
  const t0 = performance.now();
  let pipeline: Sd3Pipeline;
  try {
    pipeline = await Sd3Pipeline.load(init.modelDir, {
      provider: init.provider,
      t5: init.t5,
      ...(init.intraOpThreads ? { intraOpThreads: init.intraOpThreads } : {}),
    });
  } catch (err) {
    send({ type: 'load-failed', error: serialize(err) });
    return;
  }
  send({
    type: 'ready',
    info: {
      dtype: pipeline.model.dtype,
      defaultSize: pipeline.defaultSize,
      hasT5: pipeline.model.t5 !== null,
      loadMs: performance.now() - t0,
    },
  });
  // Jobs are handled one at a time, in arrival order.
  let chain = Promise.resolve();
  port.on('message', (msg: ToWorker) => {
    if (msg.type === 'close') {
      chain = chain.then(async () => {
        await pipeline.release();
        port.close();
      });
      return;
    }
    chain = chain.then(async () => {
      const flag = new Int32Array(msg.cancelFlag);
      try {
        const result = await pipeline.generate(msg.params, {
          outputType: msg.outputType,
          isCanceled: () => Atomics.load(flag, 0) === 1,
          onStep: ({ step, totalSteps }) => send({ type: 'progress', id: msg.id, step, totalSteps }),
          ...(msg.maxPreviews > 0
            ? { previews: { maxPreviews: msg.maxPreviews, onLatent: (s) => sendPreview(msg.id, s) } }
            : {}),
        });
        const transfer = [
          result.latents.buffer as ArrayBuffer,
          ...result.images.map((i) => i.rgb.buffer as ArrayBuffer),
        ];
        send({ type: 'result', id: msg.id, result }, transfer);
      } catch (err) {
        send({ type: 'failed', id: msg.id, error: serialize(err) });
      }
    });
  });
}

void main();
