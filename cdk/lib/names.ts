/**
 * The only names the CDK app takes from the code it deploys: environment variable names, table key
 * attributes and the redrive count, from @sd3/shared's config-keys (a file of constants), so a rename
 * there changes the deployment too.
 */
export { EDGE_ENV, ENV, MAX_RECEIVES, RECONCILER_ENV, RUNNER_ENV, TABLES } from '@sd3/shared';
