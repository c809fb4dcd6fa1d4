/** Hono variables set by the middleware. */
import type { Caller } from '../services/create-job.js';

export interface AppEnv {
  Variables: {
    requestId: string;
    caller: Caller;
    /**
     * Set by a create route once its job is written: an error after that point (a dependency
     * failing while the response is built or awaited) carries this id as generation_id, so the
     * client polls the job instead of submitting it again.
     */
    acceptedJobId: string | undefined;
  };
}
