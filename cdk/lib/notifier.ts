import { Duration } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as sources from 'aws-cdk-lib/aws-lambda-event-sources';
import type * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import { Construct } from 'constructs';
import type { DeployConfig } from './config.js';
import type { Data } from './data.js';
import { ENV } from './names.js';
import { nodeLambda } from './node-lambda.js';
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
    this.fn = nodeLambda(this, {
      config,
      entry: NOTIFIER_ENTRY,
      what: 'notifier',
      memorySize: 256,
      // A batch posts its messages concurrently, each within the 10 s delivery timeout; the events
      // queue's visibility (60 s) stays above this, as the event source requires.
      timeout: Duration.seconds(30),
      environment: {
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
