/** The gpu-runner package's public surface, for the runner service, the CLI and cross-package tests. */
export { isPipelineError, PipelineError, type PipelineErrorCode } from './errors.js';
export {
  decodeInputImage,
  encodeOutputImage,
  IMAGE_FORMATS,
  type ImageFormat,
  MIME_TYPES,
  readImageMetadata,
} from './image/image-codec.js';
export { encodePreview, PREVIEW_MAX_BYTES } from './image/preview-image.js';
export { readModelConfig, type Sd3ModelConfig } from './model/model-config.js';
export { loadSd3Model, type Sd3Model } from './model/sd3-model.js';
export { CanceledError, type LatentSnapshot, type StepProgress } from './pipeline/denoise.js';
export type { GenerationParams, InputImage, ResolvedParams } from './pipeline/generation-params.js';
export {
  isPreviewStep,
  type LatentPreviewInput,
  latentPreviewRgb,
  MAX_PREVIEWS,
  type PreviewRgb,
  previewInterval,
} from './pipeline/latent-preview.js';
export { noiseSummary, randn, TorchGenerator } from './pipeline/noise/index.js';
export { flowMatchSchedule } from './pipeline/scheduler/flow-match-euler.js';
export { type GenerationResult, Sd3Pipeline } from './pipeline/sd3-pipeline.js';
export { loadSd3Tokenizers, type Sd3Tokenizers } from './pipeline/tokenizers/index.js';
export type { RgbImage } from './pipeline/vae.js';
export { EXECUTION_PROVIDERS, type ExecutionProvider } from './runtime/onnx-backend.js';
export {
  SD3_MEDIUM_SIZES,
  type TinyModelInfo,
  type TinyModelOptions,
  writeTinyModel,
} from './tiny-model/index.js';
export { PipelineWorker } from './worker/pipeline-worker.js';
