/**
 * The CDK app: `npx cdk deploy -c preset=dev|prod [-c config='{…overrides…}']`. Environment-agnostic
 * (no account or region lookups), so `cdk synth` works offline with no credentials; the region comes
 * from the deploying profile. cdk-nag's AwsSolutions checks run on every synth.
 */
import { buildApp } from '../lib/app.js';
import { ConfigError } from '../lib/config.js';

try {
  buildApp().app.synth();
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  console.error(err.message);
  process.exitCode = 1;
}
