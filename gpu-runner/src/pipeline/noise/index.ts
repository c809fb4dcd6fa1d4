export { fma32, logAvx2, sincosAvx2, sincosOut } from './avx2-math.js';
export { MT19937 } from './mt19937.js';
export type { NoiseDtype } from './randn.js';
export { randn, shapeNumel } from './randn.js';
export type { NoiseSummary } from './summary.js';
export { exactSum, noiseSummary } from './summary.js';
export { engineSeed, TorchGenerator } from './torch-generator.js';
