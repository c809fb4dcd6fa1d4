/**
 * The one error type of the pipeline boundary. Callers (CLI, runner service) map `code` to an exit
 * code or a job failure code in one place each.
 */
export type PipelineErrorCode =
  /** The model folder is missing files, has unreadable configs or ONNX files with the wrong I/O. */
  | 'model_invalid'
  /** A generation parameter or input image is not acceptable. */
  | 'input_invalid'
  /** The requested onnxruntime execution provider could not be loaded. */
  | 'provider_unavailable'
  /** The caller canceled the generation between steps. */
  | 'canceled'
  /** Anything else: a bug or an onnxruntime failure while running. */
  | 'internal';

export class PipelineError extends Error {
  override readonly name = 'PipelineError';
  constructor(
    readonly code: PipelineErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export function isPipelineError(err: unknown): err is PipelineError {
  return err instanceof PipelineError;
}
