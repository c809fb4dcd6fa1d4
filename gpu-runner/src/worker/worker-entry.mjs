// Worker threads do not inherit a loader registered through tsx's API, so the entry registers it
// before loading the TypeScript worker.
import { register } from 'tsx/esm/api';

register();
await import('./worker-main.ts');
