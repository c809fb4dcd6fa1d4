/**
 * The AWS SDK v3 clients every edge-side process builds from its environment (the API, the
 * notifier, the reconciler): region, optional explicit credentials and the emulator endpoint
 * overrides, checked with zod like the rest of each process's settings.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { ENV } from '@sd3/shared';
import { z } from 'zod';

const endpoint = z
  .string()
  .refine((v) => URL.canParse(v) && /^https?:$/.test(new URL(v).protocol), {
    message: 'must be an http(s) URL',
  })
  .optional();

/** The variables the clients read; spread into each process's environment schema. */
export const SDK_CLIENT_ENV = {
  [ENV.AWS_ENDPOINT_SQS]: endpoint,
  [ENV.AWS_ENDPOINT_S3]: endpoint,
  [ENV.AWS_ENDPOINT_DYNAMODB]: endpoint,
  AWS_REGION: z.string().min(1).optional(),
  AWS_DEFAULT_REGION: z.string().min(1).optional(),
  AWS_ACCESS_KEY_ID: z.string().min(1).optional(),
  AWS_SECRET_ACCESS_KEY: z.string().min(1).optional(),
  AWS_SESSION_TOKEN: z.string().min(1).optional(),
};

export type SdkClientEnv = z.infer<z.ZodObject<typeof SDK_CLIENT_ENV>>;

export interface SdkClients {
  dynamodb: DynamoDBClient;
  doc: DynamoDBDocumentClient;
  sqs: SQSClient;
  /** Created on first use: the notifier and the reconciler never touch S3. */
  s3(): S3Client;
  /** Closes the clients' sockets. */
  destroy(): void;
}

export function createSdkClients(e: SdkClientEnv): SdkClients {
  const region = e.AWS_REGION ?? e.AWS_DEFAULT_REGION;
  // Explicit credentials only when the given env has them (local stack, tests); otherwise the
  // SDK's default chain (the Lambda role).
  const credentials =
    e.AWS_ACCESS_KEY_ID && e.AWS_SECRET_ACCESS_KEY
      ? {
          accessKeyId: e.AWS_ACCESS_KEY_ID,
          secretAccessKey: e.AWS_SECRET_ACCESS_KEY,
          ...(e.AWS_SESSION_TOKEN ? { sessionToken: e.AWS_SESSION_TOKEN } : {}),
        }
      : undefined;
  const common = { ...(region ? { region } : {}), ...(credentials ? { credentials } : {}) };
  const dynamodb = new DynamoDBClient({
    ...common,
    ...(e[ENV.AWS_ENDPOINT_DYNAMODB] ? { endpoint: e[ENV.AWS_ENDPOINT_DYNAMODB] } : {}),
  });
  const doc = DynamoDBDocumentClient.from(dynamodb, { marshallOptions: { removeUndefinedValues: true } });
  const sqs = new SQSClient({
    ...common,
    ...(e[ENV.AWS_ENDPOINT_SQS] ? { endpoint: e[ENV.AWS_ENDPOINT_SQS] } : {}),
  });
  let s3: S3Client | undefined;
  return {
    dynamodb,
    doc,
    sqs,
    s3() {
      s3 ??= new S3Client({
        ...common,
        ...(e[ENV.AWS_ENDPOINT_S3] ? { endpoint: e[ENV.AWS_ENDPOINT_S3], forcePathStyle: true } : {}),
      });
      return s3;
    },
    destroy() {
      dynamodb.destroy();
      sqs.destroy();
      s3?.destroy();
    },
  };
}
