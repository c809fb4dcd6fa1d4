export type { TinyDtype } from './onnx-graph.js';
export { SD3_MEDIUM_SIZES, TINY_MODEL_DEFAULT_SIZES, type TinyModelSizes } from './sizes.js';
export type { TinyCost } from './text-encoders.js';
export type { LinearTransformerCoefficients, TransformerKind } from './transformer.js';
export {
  TINY_MODEL_DEFAULT_SEED,
  type TinyModelInfo,
  type TinyModelOptions,
  writeTinyModel,
} from './write-tiny-model.js';
