/** RateLimitStore on the DynamoDB rate-limits table (atomic ADD / set operations with conditions). */
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { type DynamoDBDocumentClient, GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { jobSlotsItemKey, rpmWindowItemKey, TABLES } from '@sd3/shared';
import type { RateLimitStore, WindowHit } from '../../ports/index.js';

const PK = TABLES.rateLimits.partitionKey;

export class DynamoRateLimitStore implements RateLimitStore {
  constructor(
    private readonly doc: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  async hit(keyId: string, windowStart: number, limit: number, expiresAt: number): Promise<WindowHit> {
    try {
      const out = await this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { [PK]: rpmWindowItemKey(keyId, windowStart) },
          UpdateExpression: 'ADD #c :one SET #ttl = :ttl',
          ConditionExpression: 'attribute_not_exists(#c) OR #c < :limit',
          ExpressionAttributeNames: { '#c': 'count', '#ttl': TABLES.ttlAttribute },
          ExpressionAttributeValues: { ':one': 1, ':limit': limit, ':ttl': expiresAt },
          ReturnValues: 'UPDATED_NEW',
        }),
      );
      return { allowed: true, count: Number(out.Attributes?.['count'] ?? 1) };
    } catch (err) {
      if (err instanceof ConditionalCheckFailedException) return { allowed: false, count: limit };
      throw err;
    }
  }

  async slots(keyId: string): Promise<string[]> {
    const out = await this.doc.send(
      new GetCommand({ TableName: this.table, Key: { [PK]: jobSlotsItemKey(keyId) }, ConsistentRead: true }),
    );
    const set = out.Item?.['slots'];
    return set instanceof Set ? [...set].map(String) : [];
  }

  async acquireSlot(keyId: string, entry: string, limit: number): Promise<boolean> {
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { [PK]: jobSlotsItemKey(keyId) },
          UpdateExpression: 'ADD slots :entry',
          ConditionExpression: 'attribute_not_exists(slots) OR size(slots) < :limit',
          ExpressionAttributeValues: { ':entry': new Set([entry]), ':limit': limit },
        }),
      );
      return true;
    } catch (err) {
      if (err instanceof ConditionalCheckFailedException) return false;
      throw err;
    }
  }

  async releaseSlots(keyId: string, entries: string[]): Promise<void> {
    if (entries.length === 0) return;
    await this.doc.send(
      new UpdateCommand({
        TableName: this.table,
        Key: { [PK]: jobSlotsItemKey(keyId) },
        UpdateExpression: 'DELETE slots :entries',
        ExpressionAttributeValues: { ':entries': new Set(entries) },
      }),
    );
  }
}
