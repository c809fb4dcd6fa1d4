/** Contracts shared by the edge and the GPU runner. No AWS SDK, no onnxruntime: it ships in the edge bundle. */
export * from './config-keys.js';
export * from './contracts/api-key.js';
export * from './contracts/billing.js';
export * from './contracts/generation-request.js';
export * from './contracts/job.js';
export * from './contracts/job-record.js';
export * from './contracts/key-limits.js';
export * from './contracts/openai-images.js';
export * from './contracts/problem.js';
export * from './contracts/quote.js';
export * from './contracts/settlement-protocol.js';
export * from './contracts/webhooks.js';
export * from './envelope/canonical-json.js';
export * from './envelope/signed-envelope.js';
export * from './errors/error-codes.js';
export * from './storage/object-keys.js';
