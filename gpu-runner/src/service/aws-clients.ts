/** The AWS SDK clients of the runner, pointed at the emulators when endpoint overrides are set. */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { RunnerConfig } from './config.js';

export interface AwsClients {
  sqs: SQSClient;
  s3: S3Client;
  ddb: DynamoDBDocumentClient;
  destroy(): void;
}

export function createAwsClients(config: Pick<RunnerConfig, 'region' | 'endpoints'>): AwsClients {
  const region = config.region ? { region: config.region } : {};
  const sqs = new SQSClient({
    ...region,
    ...(config.endpoints.sqs ? { endpoint: config.endpoints.sqs } : {}),
  });
  const s3 = new S3Client({
    ...region,
    // Emulators serve buckets as paths, not subdomains.
    ...(config.endpoints.s3 ? { endpoint: config.endpoints.s3, forcePathStyle: true } : {}),
  });
  const raw = new DynamoDBClient({
    ...region,
    ...(config.endpoints.dynamodb ? { endpoint: config.endpoints.dynamodb } : {}),
  });
  const ddb = DynamoDBDocumentClient.from(raw, { marshallOptions: { removeUndefinedValues: true } });
  return {
    sqs,
    s3,
    ddb,
    destroy() {
      sqs.destroy();
      s3.destroy();
      ddb.destroy();
      raw.destroy();
    },
  };
}
