/**
 * The main-thread handle of the pipeline worker: starts the worker (sessions are created once,
 * there), sends one generation at a time, forwards progress and passes cancellation through a
 * shared flag that the worker checks between denoising steps.
 */
import { Worker } from 'node:worker_threads';
import { PipelineError } from '../errors.js';
import type { StepProgress } from '../pipeline/denoise.js';
import { CanceledError } from '../pipeline/denoise.js';
import type { GenerationParams } from '../pipeline/generation-params.js';
import type { GenerationResult } from '../pipeline/sd3-pipeline.js';
import type {
  FromWorker,
  ModelInfo,
  PreviewFrame,
  SerializedError,
  ToWorker,
  WorkerInit,
} from './protocol.js';

export interface WorkerGenerateOptions {
  onStep?: (progress: StepProgress) => void;
  /** Live previews: at most `maxPreviews` (latent-preview.ts), each handed to `onPreview`. */
  previews?: { maxPreviews: number; onPreview: (frame: PreviewFrame) => void };
  signal?: AbortSignal;
  outputType?: 'image' | 'latent';
}

interface Pending {
  resolve: (r: GenerationResult) => void;
  reject: (e: Error) => void;
  onStep: ((p: StepProgress) => void) | undefined;
  onPreview: ((frame: PreviewFrame) => void) | undefined;
  cleanup: () => void;
}

function toError(e: SerializedError): PipelineError {
  if (e.code === 'canceled' && e.stepsCompleted !== undefined) {
    const total = Number(/of (\d+) steps/.exec(e.message)?.[1] ?? e.stepsCompleted);
    return new CanceledError(e.stepsCompleted, total);
  }
  return new PipelineError(e.code, e.message);
}

export class PipelineWorker {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private exitError: Error | null = null;
  private closing = false;
  private readonly failureListeners: ((err: Error) => void)[] = [];

  private constructor(
    private readonly worker: Worker,
    readonly info: ModelInfo,
  ) {
    worker.on('message', (msg: FromWorker) => this.onMessage(msg));
    worker.on('error', (err) => this.failAll(err));
    worker.on('exit', (code) =>
      this.failAll(new PipelineError('internal', `pipeline worker exited with code ${code}`)),
    );
  }

  /** Starts the worker and waits until the model is loaded; load errors are PipelineErrors. */
  static start(init: WorkerInit): Promise<PipelineWorker> {
    const worker = new Worker(new URL('./worker-entry.mjs', import.meta.url), { workerData: init });
    return new Promise((resolve, reject) => {
      const onMessage = (msg: FromWorker) => {
        if (msg.type === 'ready') {
          off();
          resolve(new PipelineWorker(worker, msg.info));
        } else if (msg.type === 'load-failed') {
          off();
          void worker.terminate();
          reject(toError(msg.error));
        }
      };
      const onError = (err: Error) => {
        off();
        reject(
          new PipelineError('internal', `pipeline worker failed to start: ${err.message}`, { cause: err }),
        );
      };
      const onExit = (code: number) => {
        off();
        reject(new PipelineError('internal', `pipeline worker exited with code ${code} while loading`));
      };
      const off = () => {
        worker.off('message', onMessage);
        worker.off('error', onError);
        worker.off('exit', onExit);
      };
      worker.on('message', onMessage);
      worker.on('error', onError);
      worker.on('exit', onExit);
    });
  }

  generate(params: GenerationParams, options: WorkerGenerateOptions = {}): Promise<GenerationResult> {
    if (this.exitError) return Promise.reject(this.exitError);
    const id = this.nextId++;
    const cancelFlag = new SharedArrayBuffer(4);
    const flag = new Int32Array(cancelFlag);
    const onAbort = () => Atomics.store(flag, 0, 1);
    if (options.signal?.aborted) onAbort();
    options.signal?.addEventListener('abort', onAbort, { once: true });
    return new Promise((resolve, reject) => {
      this.pending.set(id, {
        resolve,
        reject,
        onStep: options.onStep,
        onPreview: options.previews?.onPreview,
        cleanup: () => options.signal?.removeEventListener('abort', onAbort),
      });
      const msg: ToWorker = {
        type: 'generate',
        id,
        params,
        outputType: options.outputType ?? 'image',
        cancelFlag,
        maxPreviews: options.previews?.maxPreviews ?? 0,
      };
      this.worker.postMessage(msg);
    });
  }

  private onMessage(msg: FromWorker): void {
    if (msg.type === 'ready' || msg.type === 'load-failed') return;
    const p = this.pending.get(msg.id);
    if (!p) return;
    if (msg.type === 'progress') {
      p.onStep?.({ step: msg.step, totalSteps: msg.totalSteps });
      return;
    }
    if (msg.type === 'preview') {
      p.onPreview?.(msg.preview);
      return;
    }
    this.pending.delete(msg.id);
    p.cleanup();
    if (msg.type === 'result') p.resolve(msg.result);
    else p.reject(toError(msg.error));
  }

  /**
   * Called once if the worker thread dies on its own (a crash, not close()): every later
   * generate() would fail, so the owner should stop taking work.
   */
  onFailure(listener: (err: Error) => void): void {
    if (this.exitError && !this.closing) listener(this.exitError);
    else this.failureListeners.push(listener);
  }

  private failAll(err: Error): void {
    const first = this.exitError === null;
    this.exitError ??= err;
    if (first && !this.closing) for (const listener of this.failureListeners) listener(err);
    for (const p of this.pending.values()) {
      p.cleanup();
      p.reject(err);
    }
    this.pending.clear();
  }

  /** Releases the sessions and stops the thread. */
  async close(): Promise<void> {
    if (this.exitError) return;
    this.closing = true;
    const exited = new Promise<void>((resolve) => this.worker.once('exit', () => resolve()));
    const msg: ToWorker = { type: 'close' };
    this.worker.postMessage(msg);
    const timer = setTimeout(() => void this.worker.terminate(), 10_000);
    await exited;
    clearTimeout(timer);
  }
}
