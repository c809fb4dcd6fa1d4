/** KeyStore on the DynamoDB keys table. */
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { type DynamoDBDocumentClient, GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { type KeyRecord, TABLES } from '@sd3/shared';
import type { KeyStore } from '../../ports/index.js';

export class DynamoKeyStore implements KeyStore {
  constructor(
    private readonly doc: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  async get(keyId: string): Promise<KeyRecord | null> {
    const out = await this.doc.send(
      new GetCommand({ TableName: this.table, Key: { [TABLES.keys.partitionKey]: keyId } }),
    );
    return (out.Item as KeyRecord | undefined) ?? null;
  }

  async touchLastUsed(keyId: string, at: number, cutoff: number): Promise<void> {
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { [TABLES.keys.partitionKey]: keyId },
          UpdateExpression: 'SET lastUsedAt = :at',
          // attribute_exists: never resurrect a deleted key as a stub item.
          ConditionExpression:
            'attribute_exists(#pk) AND (attribute_not_exists(lastUsedAt) OR lastUsedAt <= :cutoff)',
          ExpressionAttributeNames: { '#pk': TABLES.keys.partitionKey },
          ExpressionAttributeValues: { ':at': at, ':cutoff': cutoff },
        }),
      );
    } catch (err) {
      if (err instanceof ConditionalCheckFailedException) return;
      throw err;
    }
  }
}
