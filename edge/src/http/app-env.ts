/** Hono variables set by the middleware. */
import type { Caller } from '../services/create-job.js';

export interface AppEnv {
  Variables: {
    requestId: string;
    caller: Caller;
  };
}
