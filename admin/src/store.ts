/**
 * Tenants and keys in DynamoDB, as the edge reads them (KeyRecord / TenantRecord of @sd3/shared).
 * Every write is conditional, so a typo'd id never creates a stub item and a create never
 * overwrites.
 */
import { ConditionalCheckFailedException, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  ScanCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import {
  ENV,
  type KeyLimits,
  type KeyRecord,
  TABLES,
  type TenantRecord,
  type UsageRecord,
  usageSortKey,
} from '@sd3/shared';

export interface StoreConfig {
  tables: { keys: string; tenants: string; usage?: string };
  region?: string;
  endpoint?: string;
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
}

/** A failure the operator caused (unknown id, duplicate): exit code 2. */
export class AdminInputError extends Error {
  override readonly name = 'AdminInputError';
}

/** A limit to set, or null to fall back to the deployment default. */
export type LimitChange = { [K in keyof KeyLimits]?: number | null };

export class AdminStore {
  private readonly client: DynamoDBClient;
  private readonly doc: DynamoDBDocumentClient;

  constructor(private readonly config: StoreConfig) {
    this.client = new DynamoDBClient({
      ...(config.region ? { region: config.region } : {}),
      ...(config.endpoint ? { endpoint: config.endpoint } : {}),
      ...(config.credentials ? { credentials: config.credentials } : {}),
    });
    this.doc = DynamoDBDocumentClient.from(this.client, { marshallOptions: { removeUndefinedValues: true } });
  }

  destroy(): void {
    this.client.destroy();
  }

  async createTenant(tenant: TenantRecord): Promise<void> {
    try {
      await this.doc.send(
        new PutCommand({
          TableName: this.config.tables.tenants,
          Item: tenant,
          ConditionExpression: 'attribute_not_exists(#pk)',
          ExpressionAttributeNames: { '#pk': TABLES.tenants.partitionKey },
        }),
      );
    } catch (err) {
      if (err instanceof ConditionalCheckFailedException)
        throw new AdminInputError(`tenant ${tenant.tenantId} already exists`);
      throw err;
    }
  }

  async getTenant(tenantId: string): Promise<TenantRecord | null> {
    const out = await this.doc.send(
      new GetCommand({
        TableName: this.config.tables.tenants,
        Key: { [TABLES.tenants.partitionKey]: tenantId },
        ConsistentRead: true,
      }),
    );
    return (out.Item as TenantRecord | undefined) ?? null;
  }

  async listTenants(): Promise<TenantRecord[]> {
    const items = await this.scan<TenantRecord>(this.config.tables.tenants);
    return items.sort((a, b) => a.createdAt - b.createdAt);
  }

  async createKey(key: KeyRecord): Promise<void> {
    if (!(await this.getTenant(key.tenantId))) throw new AdminInputError(`no tenant ${key.tenantId}`);
    await this.doc.send(
      new PutCommand({
        TableName: this.config.tables.keys,
        Item: key,
        ConditionExpression: 'attribute_not_exists(#pk)',
        ExpressionAttributeNames: { '#pk': TABLES.keys.partitionKey },
      }),
    );
  }

  /** The tenant's keys (a scan: the keys table is small and has no tenant index). */
  async listKeys(tenantId: string): Promise<KeyRecord[]> {
    if (!(await this.getTenant(tenantId))) throw new AdminInputError(`no tenant ${tenantId}`);
    const items = await this.scan<KeyRecord>(this.config.tables.keys, {
      FilterExpression: 'tenantId = :t',
      ExpressionAttributeValues: { ':t': tenantId },
    });
    return items.sort((a, b) => a.createdAt - b.createdAt);
  }

  /** Marks the key revoked (kept for the record); returns the stored record after the change. */
  async revokeKey(keyId: string, at: number): Promise<KeyRecord> {
    return this.updateKey(keyId, {
      // A second revoke keeps the first time.
      UpdateExpression: 'SET revokedAt = if_not_exists(revokedAt, :at)',
      ExpressionAttributeValues: { ':at': at },
    });
  }

  /**
   * Adds `millicredits` to a tenant's prepaid balance (an atomic ADD, safe beside concurrent
   * reservations); a tenant without a balance gets one, so its creates are enforced from now on.
   */
  async addCredits(tenantId: string, millicredits: number): Promise<TenantRecord> {
    try {
      const out = await this.doc.send(
        new UpdateCommand({
          TableName: this.config.tables.tenants,
          Key: { [TABLES.tenants.partitionKey]: tenantId },
          UpdateExpression: 'ADD creditBalance :n',
          ConditionExpression: 'attribute_exists(#pk)',
          ExpressionAttributeNames: { '#pk': TABLES.tenants.partitionKey },
          ExpressionAttributeValues: { ':n': millicredits },
          ReturnValues: 'ALL_NEW',
        }),
      );
      return out.Attributes as TenantRecord;
    } catch (err) {
      if (err instanceof ConditionalCheckFailedException) throw new AdminInputError(`no tenant ${tenantId}`);
      throw err;
    }
  }

  /**
   * Sets (millicredits) or removes (null) a tenant's monthly spend cap. The month's spend counter is
   * kept: a new cap applies to what was already reserved this month.
   */
  async setSpendCap(tenantId: string, millicredits: number | null): Promise<TenantRecord> {
    try {
      const out = await this.doc.send(
        new UpdateCommand({
          TableName: this.config.tables.tenants,
          Key: { [TABLES.tenants.partitionKey]: tenantId },
          UpdateExpression: millicredits === null ? 'REMOVE monthlySpendCap' : 'SET monthlySpendCap = :c',
          ConditionExpression: 'attribute_exists(#pk)',
          ExpressionAttributeNames: { '#pk': TABLES.tenants.partitionKey },
          ...(millicredits === null ? {} : { ExpressionAttributeValues: { ':c': millicredits } }),
          ReturnValues: 'ALL_NEW',
        }),
      );
      return out.Attributes as TenantRecord;
    } catch (err) {
      if (err instanceof ConditionalCheckFailedException) throw new AdminInputError(`no tenant ${tenantId}`);
      throw err;
    }
  }

  /**
   * Webhook secret rotation. `rotate` makes a new secret current and keeps the old one signing too
   * (receivers see both signatures) until `finish` drops it.
   */
  async rotateWebhookSecret(tenantId: string, newSecret: string): Promise<TenantRecord> {
    return this.updateTenant(
      tenantId,
      'SET webhookSecretPrevious = webhookSecret, webhookSecret = :s',
      { ':s': newSecret },
      'attribute_exists(webhookSecret)',
    ).catch(async (err: unknown) => {
      // A tenant created before webhooks existed has no secret yet: give it one.
      if (!(err instanceof AdminInputError) || !(await this.getTenant(tenantId))) throw err;
      return this.updateTenant(tenantId, 'SET webhookSecret = :s', { ':s': newSecret });
    });
  }

  async finishWebhookRotation(tenantId: string): Promise<TenantRecord> {
    return this.updateTenant(tenantId, 'REMOVE webhookSecretPrevious');
  }

  private async updateTenant(
    tenantId: string,
    update: string,
    values?: Record<string, unknown>,
    extraCondition?: string,
  ): Promise<TenantRecord> {
    try {
      const out = await this.doc.send(
        new UpdateCommand({
          TableName: this.config.tables.tenants,
          Key: { [TABLES.tenants.partitionKey]: tenantId },
          UpdateExpression: update,
          ConditionExpression: `attribute_exists(#pk)${extraCondition ? ` AND ${extraCondition}` : ''}`,
          ExpressionAttributeNames: { '#pk': TABLES.tenants.partitionKey },
          ...(values ? { ExpressionAttributeValues: values } : {}),
          ReturnValues: 'ALL_NEW',
        }),
      );
      return out.Attributes as TenantRecord;
    } catch (err) {
      if (err instanceof ConditionalCheckFailedException) throw new AdminInputError(`no tenant ${tenantId}`);
      throw err;
    }
  }

  async setLimits(keyId: string, change: LimitChange): Promise<KeyRecord> {
    const sets: string[] = [];
    const removes: string[] = [];
    const values: Record<string, number> = {};
    for (const [name, value] of Object.entries(change)) {
      if (value === undefined) continue;
      if (value === null) removes.push(name);
      else {
        sets.push(`${name} = :${name}`);
        values[`:${name}`] = value;
      }
    }
    const expression = [
      sets.length ? `SET ${sets.join(', ')}` : '',
      removes.length ? `REMOVE ${removes.join(', ')}` : '',
    ]
      .filter(Boolean)
      .join(' ');
    return this.updateKey(keyId, {
      UpdateExpression: expression,
      ...(sets.length ? { ExpressionAttributeValues: values } : {}),
    });
  }

  private async updateKey(
    keyId: string,
    update: { UpdateExpression: string; ExpressionAttributeValues?: Record<string, unknown> },
  ): Promise<KeyRecord> {
    try {
      const out = await this.doc.send(
        new UpdateCommand({
          TableName: this.config.tables.keys,
          Key: { [TABLES.keys.partitionKey]: keyId },
          ConditionExpression: 'attribute_exists(#pk)',
          ExpressionAttributeNames: { '#pk': TABLES.keys.partitionKey },
          ReturnValues: 'ALL_NEW',
          ...update,
        }),
      );
      return out.Attributes as KeyRecord;
    } catch (err) {
      if (err instanceof ConditionalCheckFailedException) throw new AdminInputError(`no key ${keyId}`);
      throw err;
    }
  }

  /** A tenant's usage-ledger items settled in [fromMs, toMs), oldest first. */
  async usage(tenantId: string, fromMs: number, toMs: number): Promise<UsageRecord[]> {
    const table = this.config.tables.usage;
    if (!table) {
      throw new AdminInputError(`name the usage table with --tables-prefix or ${ENV.USAGE_TABLE}`);
    }
    const items: UsageRecord[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const out = await this.doc.send(
        new QueryCommand({
          TableName: table,
          KeyConditionExpression: '#t = :t AND #sk BETWEEN :from AND :to',
          ExpressionAttributeNames: { '#t': TABLES.usage.partitionKey, '#sk': TABLES.usage.sortKey },
          ExpressionAttributeValues: {
            ':t': tenantId,
            ':from': usageSortKey(fromMs, ''),
            ':to': usageSortKey(toMs - 1, '~'),
          },
          ...(start ? { ExclusiveStartKey: start } : {}),
        }),
      );
      items.push(...((out.Items ?? []) as UsageRecord[]));
      start = out.LastEvaluatedKey;
    } while (start);
    return items;
  }

  private async scan<T>(
    table: string,
    filter: { FilterExpression?: string; ExpressionAttributeValues?: Record<string, unknown> } = {},
  ): Promise<T[]> {
    const items: T[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const out = await this.doc.send(
        new ScanCommand({ TableName: table, ...filter, ...(start ? { ExclusiveStartKey: start } : {}) }),
      );
      items.push(...((out.Items ?? []) as T[]));
      start = out.LastEvaluatedKey;
    } while (start);
    return items;
  }
}
