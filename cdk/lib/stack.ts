/**
 * The one stack: storage, data, queues, the edge, the GPU fleet and monitoring, composed from the
 * typed config, the webhook notifier on the events queue and the scheduled crash-recovery reconciler.
 */
import { CfnOutput, RemovalPolicy, Stack, type StackProps } from 'aws-cdk-lib';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type { Construct } from 'constructs';
import type { DeployConfig } from './config.js';
import { Data } from './data.js';
import { Edge } from './edge.js';
import { GpuService } from './gpu-service.js';
import { Monitoring } from './monitoring.js';
import { applyNagSuppressions } from './nag.js';
import { Notifier } from './notifier.js';
import { Queues } from './queues.js';
import { Reconciler } from './reconciler.js';
import { Storage } from './storage.js';

export interface Sd3StackProps extends StackProps {
  config: DeployConfig;
}

/** Key id of the envelope signing key the stack generates (SD3_SIGNING_KEY_ID). */
export const SIGNING_KEY_ID = 'k1';

export class Sd3Stack extends Stack {
  readonly storage: Storage;
  readonly data: Data;
  readonly queues: Queues;
  readonly edge: Edge;
  readonly gpu: GpuService;
  readonly notifier: Notifier;
  readonly reconciler: Reconciler;
  readonly monitoring: Monitoring;
  readonly signingSecret: secretsmanager.Secret;

  constructor(scope: Construct, id: string, props: Sd3StackProps) {
    super(scope, id, props);
    const { config } = props;
    this.storage = new Storage(this, 'Storage', { config });
    this.data = new Data(this, 'Data', { config });
    this.queues = new Queues(this, 'Queues', { config });

    // {"k1":"<64 base64-alphabet characters>"}: 48 random bytes once decoded, shared by the edge
    // (signs) and the runners (verify). Rotate by adding a second key id, then switching to it.
    this.signingSecret = new secretsmanager.Secret(this, 'SigningKeys', {
      description: 'Job envelope HMAC keys (key id -> base64 secret)',
      generateSecretString: {
        secretStringTemplate: '{}',
        generateStringKey: SIGNING_KEY_ID,
        passwordLength: 64,
        excludePunctuation: true,
        includeSpace: false,
      },
      removalPolicy: config.removal === 'retain' ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY,
    });

    this.edge = new Edge(this, 'Edge', {
      config,
      data: this.data,
      storage: this.storage,
      queues: this.queues,
      signingSecret: this.signingSecret,
      signingKeyId: SIGNING_KEY_ID,
    });
    this.notifier = new Notifier(this, 'Notifier', { config, data: this.data, queues: this.queues });
    // Crash recovery: lost messages, orphaned reservations, pending settlements, lost events.
    this.reconciler = new Reconciler(this, 'Reconciler', {
      config,
      data: this.data,
      queues: this.queues,
      signingSecret: this.signingSecret,
      signingKeyId: SIGNING_KEY_ID,
    });
    this.gpu = new GpuService(this, 'Gpu', {
      config,
      storage: this.storage,
      data: this.data,
      queues: this.queues,
      signingSecret: this.signingSecret,
    });
    this.monitoring = new Monitoring(this, 'Monitoring', {
      config,
      edge: this.edge,
      gpu: this.gpu,
      queues: this.queues,
      reconciler: this.reconciler,
    });

    new CfnOutput(this, 'ApiUrl', {
      description: 'Base URL of the API (CloudFront)',
      value: `https://${this.edge.distribution.distributionDomainName}`,
    });
    new CfnOutput(this, 'ModelsBucket', {
      description: 'Upload model folders here: sd3 models push DIR s3://<bucket>/<model s3Prefix>',
      value: this.storage.modelsBucket.bucketName,
    });
    for (const m of config.models) {
      new CfnOutput(this, `ModelUri-${m.id}`, {
        description: `Where the ${m.id} runners sync their model from`,
        value: `s3://${this.storage.modelsBucket.bucketName}/${m.s3Prefix}`,
      });
    }
    new CfnOutput(this, 'JobsTable', { value: this.data.jobs.tableName });
    new CfnOutput(this, 'KeysTable', { value: this.data.keys.tableName });
    new CfnOutput(this, 'TenantsTable', { value: this.data.tenants.tableName });
    new CfnOutput(this, 'DashboardName', { value: this.monitoring.dashboard.dashboardName });
    new CfnOutput(this, 'AlarmTopicArn', { value: this.monitoring.topic.topicArn });

    applyNagSuppressions(this);
  }
}
