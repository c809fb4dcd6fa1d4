/** JobStore on DynamoDB (lib-dynamodb DocumentClient), following the shared JobRecord contract. */
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import {
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  type QueryCommandInput,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { type JobEvent, type JobRecord, settlementFields, TABLES } from '@sd3/shared';
import {
  JobExistsError,
  type JobPage,
  type JobStore,
  type ListJobsQuery,
  type ListPosition,
} from '../../ports/index.js';

const J = TABLES.jobs;

function isConditionFailure(err: unknown): boolean {
  return (
    err instanceof ConditionalCheckFailedException ||
    (err instanceof Error && err.name === 'ConditionalCheckFailedException')
  );
}

/**
 * The settlement attributes of a terminal write from queued (nothing ran: full refund). They are part
 * of the status write itself, so the charge is decided exactly once with the transition.
 */
function billingUpdate(current: JobRecord, outcome: 'failed' | 'canceled') {
  const fields = settlementFields(current, outcome);
  if (!('charge' in fields)) return { set: '', values: {} };
  return {
    set: ', charge = :charge, refund = :refund, settlement = :settlement',
    values: { ':charge': fields.charge, ':refund': fields.refund, ':settlement': fields.settlement },
  };
}

export class DynamoJobStore implements JobStore {
  constructor(
    private readonly doc: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  async create(record: JobRecord): Promise<void> {
    try {
      await this.doc.send(
        new PutCommand({
          TableName: this.table,
          Item: record,
          ConditionExpression: 'attribute_not_exists(#id)',
          ExpressionAttributeNames: { '#id': J.partitionKey },
        }),
      );
    } catch (err) {
      if (isConditionFailure(err)) throw new JobExistsError(`job ${record.jobId} already exists`);
      throw err;
    }
  }

  async get(jobId: string): Promise<JobRecord | null> {
    const out = await this.doc.send(
      new GetCommand({ TableName: this.table, Key: { [J.partitionKey]: jobId }, ConsistentRead: true }),
    );
    return (out.Item as JobRecord | undefined) ?? null;
  }

  async listByTenant(query: ListJobsQuery): Promise<JobPage> {
    // Collect one item more than asked to know whether another page exists; a status filter is
    // applied after DynamoDB's Limit, so keep reading pages until enough matched.
    const want = query.limit + 1;
    const items: JobRecord[] = [];
    let startKey: Record<string, unknown> | undefined = query.after
      ? {
          [J.partitionKey]: query.after.jobId,
          [J.byTenantKey]: query.tenantId,
          [J.byTenantSort]: query.after.createdAt,
        }
      : undefined;
    do {
      const input: QueryCommandInput = {
        TableName: this.table,
        IndexName: J.byTenantIndex,
        KeyConditionExpression: '#t = :t',
        ExpressionAttributeNames: { '#t': J.byTenantKey },
        ExpressionAttributeValues: { ':t': query.tenantId },
        ScanIndexForward: false,
        Limit: Math.max(want - items.length, 1),
        ExclusiveStartKey: startKey,
      };
      if (query.status) {
        input.FilterExpression = '#s = :s';
        input.ExpressionAttributeNames!['#s'] = 'status';
        input.ExpressionAttributeValues![':s'] = query.status;
      }
      const out = await this.doc.send(new QueryCommand(input));
      items.push(...((out.Items ?? []) as JobRecord[]));
      startKey = out.LastEvaluatedKey;
    } while (startKey && items.length < want);
    const page = items.slice(0, query.limit);
    const last = page[page.length - 1];
    const next: ListPosition | null =
      items.length > query.limit && last ? { createdAt: last.createdAt, jobId: last.jobId } : null;
    return { items: page, next };
  }

  async queuePosition(model: string, createdAt: number): Promise<number> {
    let count = 0;
    let startKey: Record<string, unknown> | undefined;
    do {
      const out = await this.doc.send(
        new QueryCommand({
          TableName: this.table,
          IndexName: J.queuedIndex,
          KeyConditionExpression: '#m = :m AND #c < :c',
          ExpressionAttributeNames: { '#m': J.queuedKey, '#c': J.queuedSort },
          ExpressionAttributeValues: { ':m': model, ':c': createdAt },
          Select: 'COUNT',
          ExclusiveStartKey: startKey,
        }),
      );
      count += out.Count ?? 0;
      startKey = out.LastEvaluatedKey;
    } while (startKey);
    return count;
  }

  async markEnqueued(jobId: string, messageId: string, at: number): Promise<void> {
    await this.doc.send(
      new UpdateCommand({
        TableName: this.table,
        Key: { [J.partitionKey]: jobId },
        UpdateExpression: 'SET enqueuedAt = :at, messageId = :m',
        ConditionExpression: 'attribute_exists(#id)',
        ExpressionAttributeNames: { '#id': J.partitionKey },
        ExpressionAttributeValues: { ':at': at, ':m': messageId },
      }),
    );
  }

  /** A conditional update returning the new item, or null when the condition failed. */
  private async conditional(
    input: ConstructorParameters<typeof UpdateCommand>[0],
  ): Promise<JobRecord | null> {
    try {
      const out = await this.doc.send(new UpdateCommand({ ...input, ReturnValues: 'ALL_NEW' }));
      return (out.Attributes as JobRecord | undefined) ?? null;
    } catch (err) {
      if (isConditionFailure(err)) return null;
      throw err;
    }
  }

  cancelQueued(current: JobRecord, event: JobEvent, at: number): Promise<JobRecord | null> {
    const bill = billingUpdate(current, 'canceled');
    return this.conditional({
      TableName: this.table,
      Key: { [J.partitionKey]: current.jobId },
      // size(events) pins the event sequence, so two writers never reuse an event id.
      ConditionExpression: '#s = :queued AND size(events) = :n',
      UpdateExpression: `SET #s = :canceled, completedAt = :at, updatedAt = :at, events = list_append(events, :ev)${bill.set} REMOVE #q`,
      ExpressionAttributeNames: { '#s': 'status', '#q': J.queuedKey },
      ExpressionAttributeValues: {
        ...bill.values,
        ':queued': 'queued',
        ':canceled': 'canceled',
        ':n': current.events.length,
        ':at': at,
        ':ev': [event],
      },
    });
  }

  requestCancel(jobId: string, at: number): Promise<JobRecord | null> {
    return this.conditional({
      TableName: this.table,
      Key: { [J.partitionKey]: jobId },
      ConditionExpression: '#s = :running',
      UpdateExpression: 'SET cancelRequested = :t, updatedAt = :at',
      ExpressionAttributeNames: { '#s': 'status' },
      ExpressionAttributeValues: { ':running': 'running', ':t': true, ':at': at },
    });
  }

  failQueued(
    current: JobRecord,
    error: { code: string; message: string },
    event: JobEvent,
    at: number,
  ): Promise<JobRecord | null> {
    const bill = billingUpdate(current, 'failed');
    return this.conditional({
      TableName: this.table,
      Key: { [J.partitionKey]: current.jobId },
      ConditionExpression: '#s = :queued AND size(events) = :n',
      UpdateExpression: `SET #s = :failed, #e = :err, completedAt = :at, updatedAt = :at, events = list_append(events, :ev)${bill.set} REMOVE #q`,
      ExpressionAttributeNames: { '#s': 'status', '#e': 'error', '#q': J.queuedKey },
      ExpressionAttributeValues: {
        ...bill.values,
        ':queued': 'queued',
        ':failed': 'failed',
        ':n': current.events.length,
        ':err': error,
        ':at': at,
        ':ev': [event],
      },
    });
  }
}
