import { Duration, Stack } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import type { DeployConfig } from './config.js';
import type { Data } from './data.js';
import { ENV, RECONCILER_ENV, TABLES } from './names.js';
import { nodeLambda } from './node-lambda.js';
import type { Queues } from './queues.js';

export const RECONCILER_ENTRY = 'edge/src/adapters/aws-reconciler-lambda.ts';

/** A job, reservation or event untouched this long is treated as lost (see edge/src/reconciler). */
export const RECONCILER_STALE_AFTER_MS = 15 * 60_000;

export interface ReconcilerProps {
  config: DeployConfig;
  data: Data;
  queues: Queues;
  signingSecret: secretsmanager.ISecret;
  signingKeyId: string;
}

export class Reconciler extends Construct {
  readonly fn: nodejs.NodejsFunction;
  readonly schedule: events.Rule;

  constructor(scope: Construct, id: string, props: ReconcilerProps) {
    super(scope, id);
    const { config, data, queues } = props;
    const jobQueues = config.models.map((m) => queues.model(m.id).jobs);
    this.fn = nodeLambda(this, {
      config,
      entry: RECONCILER_ENTRY,
      what: 'reconciler',
      memorySize: 256,
      // Well past a normal run (a few queries and writes); a longer one is picked up by the next.
      timeout: Duration.minutes(2),
      environment: {
        [ENV.JOBS_TABLE]: data.jobs.tableName,
        [ENV.TENANTS_TABLE]: data.tenants.tableName,
        [ENV.USAGE_TABLE]: data.usage.tableName,
        [ENV.JOB_QUEUES]: Stack.of(this).toJsonString(
          Object.fromEntries(config.models.map((m) => [m.id, queues.model(m.id).jobs.queueUrl])),
        ),
        [ENV.EVENTS_QUEUE_URL]: queues.events.queueUrl,
        // Resent messages are signed like the edge's: a dynamic reference, no secret in the template.
        [ENV.SIGNING_KEYS]: props.signingSecret.secretValue.unsafeUnwrap(),
        [ENV.SIGNING_KEY_ID]: props.signingKeyId,
        [RECONCILER_ENV.STALE_AFTER_MS]: String(RECONCILER_STALE_AFTER_MS),
      },
    });
    this.schedule = new events.Rule(this, 'Schedule', {
      description: 'Runs the crash-recovery reconciler every minute',
      schedule: events.Schedule.rate(Duration.minutes(1)),
      targets: [new targets.LambdaFunction(this.fn, { retryAttempts: 0 })],
    });

    this.fn.addToRolePolicy(
      new iam.PolicyStatement({
        sid: 'QueryOpenJobs',
        actions: ['dynamodb:Query'],
        resources: [`${data.jobs.tableArn}/index/${TABLES.jobs.openIndex}`],
      }),
    );
    this.fn.addToRolePolicy(
      new iam.PolicyStatement({
        sid: 'ReadWriteJobs',
        actions: ['dynamodb:GetItem', 'dynamodb:UpdateItem', 'dynamodb:PutItem'],
        resources: [data.jobs.tableArn],
      }),
    );
    this.fn.addToRolePolicy(
      new iam.PolicyStatement({
        sid: 'TenantReservationsAndRefunds',
        actions: ['dynamodb:Scan', 'dynamodb:GetItem', 'dynamodb:UpdateItem'],
        resources: [data.tenants.tableArn],
      }),
    );
    this.fn.addToRolePolicy(
      new iam.PolicyStatement({
        sid: 'UsageLedger',
        actions: ['dynamodb:PutItem'],
        resources: [data.usage.tableArn],
      }),
    );
    this.fn.addToRolePolicy(
      new iam.PolicyStatement({
        sid: 'ResendJobs',
        actions: ['sqs:SendMessage', 'sqs:GetQueueAttributes'],
        resources: jobQueues.map((q) => q.queueArn),
      }),
    );
    this.fn.addToRolePolicy(
      new iam.PolicyStatement({
        sid: 'ResendEvents',
        actions: ['sqs:SendMessage'],
        resources: [queues.events.queueArn],
      }),
    );
  }
}
