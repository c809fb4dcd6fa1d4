/** Messages between the main thread and the pipeline worker thread. */
import type { PipelineErrorCode } from '../errors.js';
import type { ModelDtype } from '../model/sd3-model.js';
import type { GenerationParams } from '../pipeline/generation-params.js';
import type { PreviewRgb } from '../pipeline/latent-preview.js';
import type { GenerationResult } from '../pipeline/sd3-pipeline.js';
import type { ExecutionProvider } from '../runtime/onnx-backend.js';

export interface WorkerInit {
  modelDir: string;
  provider: ExecutionProvider;
  t5: boolean;
  intraOpThreads?: number;
}

export interface ModelInfo {
  dtype: ModelDtype;
  defaultSize: number;
  hasT5: boolean;
  loadMs: number;
}

export type ToWorker =
  | {
      type: 'generate';
      id: number;
      params: GenerationParams;
      outputType: 'image' | 'latent';
      /** Int32 flag set to 1 by the main thread to cancel between steps. */
      cancelFlag: SharedArrayBuffer;
      /** Live previews per generation at most; 0: none (the latents are never touched). */
      maxPreviews: number;
    }
  | { type: 'close' };

export interface PreviewFrame extends PreviewRgb {
  step: number;
  totalSteps: number;
}

export interface SerializedError {
  code: PipelineErrorCode;
  message: string;
  stepsCompleted?: number;
}

export type FromWorker =
  | { type: 'ready'; info: ModelInfo }
  | { type: 'load-failed'; error: SerializedError }
  | { type: 'progress'; id: number; step: number; totalSteps: number }
  /** A live preview's RGB bytes (latent-preview.ts), transferred, not copied. */
  | { type: 'preview'; id: number; preview: PreviewFrame }
  | { type: 'result'; id: number; result: GenerationResult }
  | { type: 'failed'; id: number; error: SerializedError };
