/**
 * The runner's container image: gpu-runner/Dockerfile built with the repository root as context
 * (it needs the lock file, shared/ and gpu-runner/). Docker only reads a .dockerignore at the root
 * of the context, so the runner's ignore file is applied here when CDK stages the context: the
 * staged copy (and the asset hash) then holds only what the image uses.
 *
 * No aws-cdk-lib import here: the Dockerfile test reads these constants without loading the CDK.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from './paths.js';

export const RUNNER_DOCKERFILE = 'gpu-runner/Dockerfile';
export const RUNNER_DOCKERIGNORE = 'gpu-runner/.dockerignore';
/** Where the model cache is mounted in the container (instance storage on the host). */
export const CONTAINER_MODEL_ROOT = '/models';
/** Host directory of the model cache (the instance-store mount made by the instance user data). */
export const HOST_MODEL_ROOT = '/opt/sd3/models';
/** The uid the image runs as; the host cache directory is given to it. */
export const RUNNER_UID = 10001;
/** Port of the runner's /healthz (RUNNER_ENV.HEALTH_PORT). */
export const RUNNER_HEALTH_PORT = 8080;

/** Patterns of the runner's .dockerignore (comments and blank lines dropped). */
export function runnerIgnorePatterns(root = REPO_ROOT): string[] {
  return readFileSync(join(root, RUNNER_DOCKERIGNORE), 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
}
