/** Where the deployed artifacts are, relative to this file (the app may run from any directory). */
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
