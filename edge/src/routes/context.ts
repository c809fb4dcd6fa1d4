/** What every route module gets: the resolved deps and the app's key cache. */
import type { ResolvedDeps } from '../deps.js';
import type { KeyCache } from '../http/auth.js';

export interface RouteContext {
  deps: ResolvedDeps;
  keyCache: KeyCache;
}
