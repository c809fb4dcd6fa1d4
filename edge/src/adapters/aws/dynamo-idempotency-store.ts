/** IdempotencyStore on DynamoDB: a conditional put reserves, a conditional delete releases. */
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { DeleteCommand, type DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { TABLES } from '@sd3/shared';
import type { IdempotencyRecord, IdempotencyStore } from '../../ports/index.js';

const KEY = TABLES.idempotency.partitionKey;

const conditionFailed = (err: unknown) =>
  err instanceof ConditionalCheckFailedException ||
  (err instanceof Error && err.name === 'ConditionalCheckFailedException');

export class DynamoIdempotencyStore implements IdempotencyStore {
  constructor(
    private readonly doc: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  async reserve(record: IdempotencyRecord, now: number): Promise<IdempotencyRecord | null> {
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        // An expired record may linger until DynamoDB's TTL sweep: treat it as absent.
        await this.doc.send(
          new PutCommand({
            TableName: this.table,
            Item: record,
            ConditionExpression: 'attribute_not_exists(#k) OR #exp < :now',
            ExpressionAttributeNames: { '#k': KEY, '#exp': TABLES.ttlAttribute },
            ExpressionAttributeValues: { ':now': Math.floor(now / 1000) },
          }),
        );
        return null;
      } catch (err) {
        if (!conditionFailed(err)) throw err;
      }
      const out = await this.doc.send(
        new GetCommand({ TableName: this.table, Key: { [KEY]: record.scope }, ConsistentRead: true }),
      );
      // Gone between the put and the get (released by a failed first request): try again.
      if (out.Item) return out.Item as IdempotencyRecord;
    }
    throw new Error(`idempotency scope ${record.scope} kept changing`);
  }

  async release(scope: string, jobId: string): Promise<void> {
    try {
      await this.doc.send(
        new DeleteCommand({
          TableName: this.table,
          Key: { [KEY]: scope },
          ConditionExpression: 'jobId = :j',
          ExpressionAttributeValues: { ':j': jobId },
        }),
      );
    } catch (err) {
      if (!conditionFailed(err)) throw err;
    }
  }
}
