/**
 * Seeds a tenant and an API key into the local tables (the admin CLI of the pay-per-use issue does
 * this in AWS). The key comes from SD3_DEV_API_KEY when set, so a developer can keep one across
 * restarts; otherwise a new one is generated and printed once.
 */
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import {
  generateApiKey,
  generateWebhookSecret,
  hashSecret,
  type KeyRecord,
  type KeyScope,
  parseApiKey,
  type TenantRecord,
} from '@sd3/shared';

export interface SeededKey {
  tenantId: string;
  /** The tenant's webhook signing secret (whsec_…). */
  webhookSecret: string;
  keyId: string;
  /** The full `sk_…` token: shown once, never stored. */
  token: string;
}

export async function seedTenantAndKey(
  dynamodb: DynamoDBClient,
  tables: { keys: string; tenants: string },
  options: { tenantId?: string; name?: string; apiKey?: string; scopes?: KeyScope[] } = {},
): Promise<SeededKey> {
  let parsed: { keyId: string; secret: string; token: string };
  if (options.apiKey !== undefined) {
    const p = parseApiKey(options.apiKey);
    if (!p)
      throw new Error(
        'SD3_DEV_API_KEY must look like sk_<12 lowercase letters or digits>_<32-64 letters or digits>',
      );
    parsed = { ...p, token: options.apiKey };
  } else {
    parsed = generateApiKey();
  }
  const doc = DynamoDBDocumentClient.from(dynamodb);
  const tenantId = options.tenantId ?? 'ten_dev';
  const now = Date.now();
  const tenant: TenantRecord = { tenantId, name: options.name ?? 'Local developer', createdAt: now };
  const key: KeyRecord = {
    keyId: parsed.keyId,
    tenantId,
    secretHash: await hashSecret(parsed.secret),
    scopes: options.scopes ?? ['generate', 'read'],
    name: 'dev key',
    createdAt: now,
  };
  // Seeding the same tenant again (a second key) keeps its webhook secret.
  const seeded = await doc.send(
    new UpdateCommand({
      TableName: tables.tenants,
      Key: { tenantId },
      UpdateExpression:
        'SET #n = :n, createdAt = if_not_exists(createdAt, :c), webhookSecret = if_not_exists(webhookSecret, :w)',
      ExpressionAttributeNames: { '#n': 'name' },
      ExpressionAttributeValues: { ':n': tenant.name, ':c': tenant.createdAt, ':w': generateWebhookSecret() },
      ReturnValues: 'ALL_NEW',
    }),
  );
  const webhookSecret = (seeded.Attributes as TenantRecord).webhookSecret!;
  await doc.send(new PutCommand({ TableName: tables.keys, Item: key }));
  return { tenantId, webhookSecret, keyId: parsed.keyId, token: parsed.token };
}
