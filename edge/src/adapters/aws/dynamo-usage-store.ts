/** UsageStore on DynamoDB: one Query over the tenant's partition, by the time-ordered sort key. */
import { type DynamoDBDocumentClient, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { TABLES, type UsageRecord, usageSortKey } from '@sd3/shared';
import type { UsageStore } from '../../ports/index.js';

export class DynamoUsageStore implements UsageStore {
  constructor(
    private readonly doc: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  async query(tenantId: string, fromMs: number, toMs: number): Promise<UsageRecord[]> {
    const items: UsageRecord[] = [];
    let startKey: Record<string, unknown> | undefined;
    do {
      const out = await this.doc.send(
        new QueryCommand({
          TableName: this.table,
          // `#` sorts below every job-id character, so [from#, to#) holds exactly [from, to).
          KeyConditionExpression: '#t = :t AND #sk BETWEEN :from AND :to',
          ExpressionAttributeNames: { '#t': TABLES.usage.partitionKey, '#sk': TABLES.usage.sortKey },
          ExpressionAttributeValues: {
            ':t': tenantId,
            ':from': usageSortKey(fromMs, ''),
            ':to': usageSortKey(toMs - 1, '~'),
          },
          ExclusiveStartKey: startKey,
        }),
      );
      items.push(...((out.Items ?? []) as UsageRecord[]));
      startKey = out.LastEvaluatedKey;
    } while (startKey);
    return items;
  }
}
