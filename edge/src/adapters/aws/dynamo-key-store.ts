/** KeyStore on the DynamoDB keys table. */
import { type DynamoDBDocumentClient, GetCommand } from '@aws-sdk/lib-dynamodb';
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
}
