/** Model folders in S3: manifest, push, sync (the runner's start-up cache fill) and verify. */
export {
  buildManifest,
  hashFile,
  MANIFEST_NAME,
  type ManifestFile,
  type ModelManifest,
  ModelManifestSchema,
  parseManifest,
  SYNC_STAMP_NAME,
} from './manifest.js';
export { type PushOptions, type PushResult, pushModel } from './push.js';
export { modelsS3Client, objectKey, parseS3Uri, type S3Location } from './s3-uri.js';
export { type SyncOptions, type SyncResult, syncModel, verifyModelDir } from './sync.js';
