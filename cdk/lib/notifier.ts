/**
 * The webhook notifier: a Node 22 ESM Lambda (edge/src/adapters/aws-notifier-lambda.ts, bundled
 * with esbuild like the edge) fed by an SQS event source on the events queue with partial batch
 * responses. Retries are re-sent to the same queue with a delay, so besides consuming it the
 * function may send to it. Least privilege: read jobs and tenants, update job items (the delivery
 * log lives in the job item), nothing in S3, no other queue.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sources from 'aws-cdk-lib/aws-lambda-event-sources';
import * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import type { DeployConfig } from './config.js';
import type { Data } from './data.js';
import { ENV } from './names.js';
import { REPO_ROOT } from './paths.js';
import type { Queues } from './queues.js';

export const NOTIFIER_ENTRY = 'edge/src/adapters/aws-notifier-lambda.ts';

export interface NotifierProps {
  config: DeployConfig;
  data: Data;
  queues: Queues;
}

export class Notifier extends Construct {
  readonly fn: nodejs.NodejsFunction;

  constructor(scope: Construct, id: string, props: NotifierProps) {
    super(scope, id);
    const { config, data, queues } = props;
    const entry = join(REPO_ROOT, NOTIFIER_ENTRY);
    if (!existsSync(entry)) throw new Error(`notifier entry ${NOTIFIER_ENTRY} does not exist`);
    const logGroup = new logs.LogGroup(this, 'Logs', {
      retention: config.retention.logDays satisfies number as logs.RetentionDays,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.fn = new nodejs.NodejsFunction(this, 'Function', {
      entry,
      handler: 'handler',
      runtime: lambda.Runtime.NODEJS_22_X,
      architecture: lambda.Architecture.ARM_64,
      memorySize: 256,
      // A batch posts its messages concurrently, each within the 10 s delivery timeout; the events
      // queue's visibility (60 s) stays above this, as the event source requires.
      timeout: Duration.seconds(30),
      logGroup,
      loggingFormat: lambda.LoggingFormat.JSON,
      projectRoot: REPO_ROOT,
      depsLockFilePath: join(REPO_ROOT, 'package-lock.json'),
      bundling: {
        format: nodejs.OutputFormat.ESM,
        target: 'node22',
        minify: true,
        sourceMap: true,
        externalModules: ['@aws-sdk/*'],
        banner: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);",
        forceDockerBundling: false,
      },
      environment: {
        NODE_OPTIONS: '--enable-source-maps',
        [ENV.JOBS_TABLE]: data.jobs.tableName,
        [ENV.TENANTS_TABLE]: data.tenants.tableName,
        [ENV.EVENTS_QUEUE_URL]: queues.events.queueUrl,
      },
    });
    this.fn.addEventSource(
      new sources.SqsEventSource(queues.events, {
        batchSize: 10,
        reportBatchItemFailures: true,
      }),
    );
    // The event source grants consume rights on the events queue; retries go back to it.
    queues.events.grantSendMessages(this.fn);
    this.fn.addToRolePolicy(
      new iam.PolicyStatement({
        sid: 'ReadJobsAndTenants',
        actions: ['dynamodb:GetItem'],
        resources: [data.jobs.tableArn, data.tenants.tableArn],
      }),
    );
    this.fn.addToRolePolicy(
      new iam.PolicyStatement({
        sid: 'WriteDeliveryLog',
        actions: ['dynamodb:UpdateItem'],
        resources: [data.jobs.tableArn],
      }),
    );
  }
}
