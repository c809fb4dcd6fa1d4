/**
 * The one way this app builds its Node 22 Lambdas (the edge API, the webhook notifier, the
 * reconciler) from a TypeScript entry in the repo: an ESM bundle made locally with esbuild (no
 * Docker), the AWS SDK from the runtime, JSON logs in a log group with the configured retention,
 * and source maps in stack traces.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { type Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';
import type { DeployConfig } from './config.js';
import { REPO_ROOT } from './paths.js';

export interface NodeLambdaProps {
  config: DeployConfig;
  /** The handler module, relative to the repo root; `what` names it in the error if it is missing. */
  entry: string;
  what: string;
  /** Where the entry is configured, added to that error. */
  hint?: string;
  memorySize: number;
  timeout: Duration;
  /** Default ARM_64. */
  architecture?: lambda.Architecture;
  environment: Record<string, string>;
  /** Left out of the bundle besides the runtime's AWS SDK (shipped by `commandHooks` instead). */
  externalModules?: string[];
  commandHooks?: nodejs.ICommandHooks;
}

/** Adds `Logs` (the log group) and `Function` to `scope`. */
export function nodeLambda(scope: Construct, props: NodeLambdaProps): nodejs.NodejsFunction {
  const entry = join(REPO_ROOT, props.entry);
  if (!existsSync(entry)) {
    const hint = props.hint ? ` (${props.hint})` : '';
    throw new Error(`${props.what} entry ${props.entry} does not exist${hint}`);
  }
  const logGroup = new logs.LogGroup(scope, 'Logs', {
    retention: props.config.retention.logDays satisfies number as logs.RetentionDays,
    removalPolicy: RemovalPolicy.DESTROY,
  });
  return new nodejs.NodejsFunction(scope, 'Function', {
    entry,
    handler: 'handler',
    runtime: lambda.Runtime.NODEJS_22_X,
    architecture: props.architecture ?? lambda.Architecture.ARM_64,
    memorySize: props.memorySize,
    timeout: props.timeout,
    logGroup,
    loggingFormat: lambda.LoggingFormat.JSON,
    projectRoot: REPO_ROOT,
    depsLockFilePath: join(REPO_ROOT, 'package-lock.json'),
    bundling: {
      format: nodejs.OutputFormat.ESM,
      target: 'node22',
      minify: true,
      sourceMap: true,
      externalModules: ['@aws-sdk/*', ...(props.externalModules ?? [])],
      // CommonJS dependencies inside an ESM bundle still call require() for Node built-ins.
      banner: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);",
      forceDockerBundling: false,
      ...(props.commandHooks ? { commandHooks: props.commandHooks } : {}),
    },
    environment: { NODE_OPTIONS: '--enable-source-maps', ...props.environment },
  });
}
