/**
 * Builds the CDK app from context: config (preset + overrides), the stack, and cdk-nag's
 * AwsSolutions checks as a validation plugin (a finding without an acknowledgement fails the synth).
 */
import { App, type AppProps, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { configFromContext, type DeployConfig } from './config.js';
import { Sd3Stack } from './stack.js';

export interface BuiltApp {
  app: App;
  stack: Sd3Stack;
  config: DeployConfig;
}

export function buildApp(props: AppProps = {}): BuiltApp {
  const app = new App(props);
  const config = configFromContext((key) => app.node.tryGetContext(key));
  const stack = new Sd3Stack(app, config.stackName, {
    config,
    description: `sd3-serverless (${config.preset}): SD3 image API on a GPU fleet that scales on backlog`,
  });
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true }));
  return { app, stack, config };
}
