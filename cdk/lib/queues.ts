/**
 * One jobs queue + DLQ per model and the events queue (+ its DLQ). Visibility is sized to the gap
 * between two heartbeats of the runner, not to a whole job: a runner that dies releases its job after
 * at most one visibility timeout, and a long job keeps its message hidden by extending it.
 */
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import type { DeployConfig } from './config.js';
import { MAX_RECEIVES } from './names.js';

export interface QueuesProps {
  config: DeployConfig;
}

export interface ModelQueues {
  jobs: sqs.Queue;
  dlq: sqs.Queue;
}

export class Queues extends Construct {
  readonly byModel: ReadonlyMap<string, ModelQueues>;
  readonly events: sqs.Queue;
  readonly eventsDlq: sqs.Queue;

  constructor(scope: Construct, id: string, props: QueuesProps) {
    super(scope, id);
    const { config } = props;
    const common = {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      removalPolicy: RemovalPolicy.DESTROY,
    };
    const byModel = new Map<string, ModelQueues>();
    for (const model of config.models) {
      const dlq = new sqs.Queue(this, `${model.id}-dlq`, { ...common, retentionPeriod: Duration.days(14) });
      const jobs = new sqs.Queue(this, `${model.id}-jobs`, {
        ...common,
        visibilityTimeout: Duration.seconds(config.queue.visibilityTimeoutSeconds),
        retentionPeriod: Duration.hours(config.queue.retentionHours),
        receiveMessageWaitTime: Duration.seconds(20),
        deadLetterQueue: { queue: dlq, maxReceiveCount: MAX_RECEIVES },
      });
      byModel.set(model.id, { jobs, dlq });
    }
    this.byModel = byModel;
    this.eventsDlq = new sqs.Queue(this, 'events-dlq', { ...common, retentionPeriod: Duration.days(14) });
    this.events = new sqs.Queue(this, 'events', {
      ...common,
      visibilityTimeout: Duration.seconds(60),
      retentionPeriod: Duration.days(4),
      deadLetterQueue: { queue: this.eventsDlq, maxReceiveCount: 5 },
    });
  }

  model(id: string): ModelQueues {
    const q = this.byModel.get(id);
    if (!q) throw new Error(`no queues for model ${id}`);
    return q;
  }
}
