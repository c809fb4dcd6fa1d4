/**
 * Buckets: media (inputs/ and outputs/, expired by lifecycle), models (folders written by
 * `sd3 models push`) and the access-log bucket both of them and CloudFront log into. All private,
 * encrypted at rest and reachable over TLS only.
 */
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import type { DeployConfig } from './config.js';

export interface StorageProps {
  config: DeployConfig;
}

/** Object key prefixes the IAM policies are written against (shared's key layout). */
export const MEDIA_PREFIXES = { inputs: 'inputs/', outputs: 'outputs/' } as const;

export class Storage extends Construct {
  readonly mediaBucket: s3.Bucket;
  readonly modelsBucket: s3.Bucket;
  readonly accessLogsBucket: s3.Bucket;

  constructor(scope: Construct, id: string, props: StorageProps) {
    super(scope, id);
    const { config } = props;
    const destroy = config.removal === 'destroy';
    const lifetime = {
      removalPolicy: destroy ? RemovalPolicy.DESTROY : RemovalPolicy.RETAIN,
      autoDeleteObjects: destroy,
    };
    const common = {
      encryption: s3.BucketEncryption.S3_MANAGED,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      ...lifetime,
    };

    this.accessLogsBucket = new s3.Bucket(this, 'AccessLogs', {
      ...common,
      // CloudFront standard logging writes with ACLs, so this bucket keeps them enabled.
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
      lifecycleRules: [{ expiration: Duration.days(config.retention.accessLogsDays) }],
    });

    this.mediaBucket = new s3.Bucket(this, 'Media', {
      ...common,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      serverAccessLogsBucket: this.accessLogsBucket,
      serverAccessLogsPrefix: 'media/',
      lifecycleRules: [
        { prefix: MEDIA_PREFIXES.inputs, expiration: Duration.days(config.retention.inputsDays) },
        { prefix: MEDIA_PREFIXES.outputs, expiration: Duration.days(config.retention.outputsDays) },
        { abortIncompleteMultipartUploadAfter: Duration.days(1) },
      ],
      // Presigned output URLs are bearer links; browsers fetching them from a web app need CORS.
      cors: [
        { allowedMethods: [s3.HttpMethods.GET, s3.HttpMethods.HEAD], allowedOrigins: ['*'], maxAge: 3600 },
      ],
    });

    this.modelsBucket = new s3.Bucket(this, 'Models', {
      ...common,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      serverAccessLogsBucket: this.accessLogsBucket,
      serverAccessLogsPrefix: 'models/',
      lifecycleRules: [{ abortIncompleteMultipartUploadAfter: Duration.days(2) }],
    });
  }
}
