/**
 * The jobs the reconciler still watches (the sparse openByModel index) and the conditional writes
 * it makes on them. Every write pins what the decision was made on (status, event count, resend
 * count, lease), so two reconcilers, an edge or a runner acting at the same time never double up:
 * the loser's condition fails and it decides again on the next run.
 */
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import {
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import {
  JOB_RETENTION_SECONDS,
  type JobEvent,
  type JobRecord,
  type JobStatus,
  type SettlementState,
  settlementFields,
  TABLES,
} from '@sd3/shared';

const J = TABLES.jobs;

/** An index entry: the key and the projected attributes (shared TABLES.jobs.openProjection). */
export interface OpenJob {
  jobId: string;
  createdAt: number;
  status: JobStatus;
  enqueuedAt?: number;
  completedAt?: number;
  settlement?: SettlementState;
}

function isConditionFailure(err: unknown): boolean {
  return (
    err instanceof ConditionalCheckFailedException ||
    (err instanceof Error && err.name === 'ConditionalCheckFailedException')
  );
}

/** The condition pinning a queued or running record as read (see the file comment). */
function pinned(record: JobRecord) {
  const values: Record<string, unknown> = {
    ':status': record.status,
    ':n': record.events.length,
  };
  const parts = ['#status = :status', 'size(events) = :n'];
  if (record.leaseUntil === undefined) parts.push('attribute_not_exists(leaseUntil)');
  else {
    parts.push('leaseUntil = :lease');
    values[':lease'] = record.leaseUntil;
  }
  return { condition: parts.join(' AND '), values };
}

export class OpenJobs {
  constructor(
    private readonly doc: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  /** Every open job of a model (index pages read to the end; the entries are small). */
  async list(model: string): Promise<OpenJob[]> {
    const out: OpenJob[] = [];
    let startKey: Record<string, unknown> | undefined;
    do {
      const page = await this.doc.send(
        new QueryCommand({
          TableName: this.table,
          IndexName: J.openIndex,
          KeyConditionExpression: '#m = :m',
          ExpressionAttributeNames: { '#m': J.openKey },
          ExpressionAttributeValues: { ':m': model },
          ExclusiveStartKey: startKey,
        }),
      );
      out.push(...((page.Items ?? []) as OpenJob[]));
      startKey = page.LastEvaluatedKey;
    } while (startKey);
    return out;
  }

  async get(jobId: string): Promise<JobRecord | null> {
    const out = await this.doc.send(
      new GetCommand({ TableName: this.table, Key: { [J.partitionKey]: jobId }, ConsistentRead: true }),
    );
    return (out.Item as JobRecord | undefined) ?? null;
  }

  /**
   * Counts one resend and restarts the job's staleness clock (`enqueuedAt`), if the job is still as
   * read: exactly one caller wins the right to send this round. False: someone moved it first.
   */
  async claimResend(record: JobRecord, now: number): Promise<boolean> {
    const pin = pinned(record);
    const resends = record.resends ?? 0;
    const enqueued =
      record.enqueuedAt === undefined ? 'attribute_not_exists(enqueuedAt)' : 'enqueuedAt = :enq';
    return this.update(
      {
        UpdateExpression: 'SET resends = :next, enqueuedAt = :now, updatedAt = :now REMOVE messageId',
        ConditionExpression: `${pin.condition} AND ${enqueued} AND ${
          resends === 0 ? '(attribute_not_exists(resends) OR resends = :zero)' : 'resends = :resends'
        }`,
        ExpressionAttributeNames: { '#status': 'status' },
        ExpressionAttributeValues: {
          ...pin.values,
          ':next': resends + 1,
          ':now': now,
          ...(record.enqueuedAt === undefined ? {} : { ':enq': record.enqueuedAt }),
          ...(resends === 0 ? { ':zero': 0 } : { ':resends': resends }),
        },
      },
      record.jobId,
    );
  }

  /** Records the resent message's id (bookkeeping only). */
  async recordMessageId(jobId: string, messageId: string): Promise<void> {
    await this.update(
      {
        UpdateExpression: 'SET messageId = :m',
        ConditionExpression: 'attribute_exists(#id) AND attribute_not_exists(messageId)',
        ExpressionAttributeNames: { '#id': J.partitionKey },
        ExpressionAttributeValues: { ':m': messageId },
      },
      jobId,
    );
  }

  /**
   * queued | running (as read) -> failed with the event appended and the charge decided (nothing
   * ran to completion: full refund). Returns the record as written, or null when it moved.
   */
  async failLost(
    record: JobRecord,
    error: { code: string; message: string },
    event: JobEvent,
    now: number,
  ): Promise<JobRecord | null> {
    const pin = pinned(record);
    const fields = settlementFields(record, 'failed');
    const bill = 'charge' in fields ? ', charge = :charge, refund = :refund, settlement = :settlement' : '';
    try {
      const out = await this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { [J.partitionKey]: record.jobId },
          UpdateExpression:
            `SET #status = :failed, #error = :err, completedAt = :now, updatedAt = :now, ` +
            `events = list_append(events, :ev)${bill} REMOVE #queued, leaseUntil`,
          ConditionExpression: pin.condition,
          ExpressionAttributeNames: { '#status': 'status', '#error': 'error', '#queued': J.queuedKey },
          ExpressionAttributeValues: {
            ...pin.values,
            ':failed': 'failed',
            ':err': error,
            ':now': now,
            ':ev': [event],
            ...('charge' in fields
              ? { ':charge': fields.charge, ':refund': fields.refund, ':settlement': fields.settlement }
              : {}),
          },
          ReturnValues: 'ALL_NEW',
        }),
      );
      return (out.Attributes as JobRecord | undefined) ?? null;
    } catch (err) {
      if (isConditionFailure(err)) return null;
      throw err;
    }
  }

  /** Counts one resend of the terminal event, if nobody else counted it since the read. */
  async claimEventResend(record: JobRecord, now: number): Promise<boolean> {
    const n = record.eventResends ?? 0;
    return this.update(
      {
        UpdateExpression: 'SET eventResends = :next, eventResentAt = :now',
        ConditionExpression:
          n === 0 ? '(attribute_not_exists(eventResends) OR eventResends = :n)' : 'eventResends = :n',
        ExpressionAttributeValues: { ':next': n + 1, ':now': now, ':n': n },
      },
      record.jobId,
    );
  }

  /** Takes a terminal, settled job off the open index. */
  async close(jobId: string): Promise<boolean> {
    return this.update(
      {
        UpdateExpression: 'REMOVE #open',
        ConditionExpression:
          '#status IN (:succeeded, :failed, :canceled) AND (attribute_not_exists(settlement) OR settlement = :done)',
        ExpressionAttributeNames: { '#open': J.openKey, '#status': 'status' },
        ExpressionAttributeValues: {
          ':succeeded': 'succeeded',
          ':failed': 'failed',
          ':canceled': 'canceled',
          ':done': 'done',
        },
      },
      jobId,
    );
  }

  /**
   * Writes a placeholder under the job id of a reservation whose job is missing, so the create
   * that reserved it can never write the job afterwards (its conditional put fails and it gets an
   * error): refunding is then safe. 'exists': the job was written, keep it.
   */
  async voidJobId(jobId: string, marker: string, now: number): Promise<'voided' | 'exists'> {
    try {
      await this.doc.send(
        new PutCommand({
          TableName: this.table,
          Item: {
            [J.partitionKey]: jobId,
            // Terminal, so a job slot taken for it is freed; no tenantId, so no tenant sees it.
            status: 'failed',
            voidedReservation: marker,
            createdAt: now,
            [TABLES.ttlAttribute]: Math.floor(now / 1000) + JOB_RETENTION_SECONDS,
          },
          ConditionExpression: 'attribute_not_exists(#id)',
          ExpressionAttributeNames: { '#id': J.partitionKey },
        }),
      );
      return 'voided';
    } catch (err) {
      if (isConditionFailure(err)) {
        const existing = await this.get(jobId);
        // A placeholder from an earlier run whose refund did not complete: void again.
        if (existing && (existing as { voidedReservation?: string }).voidedReservation === marker) {
          return 'voided';
        }
        return 'exists';
      }
      throw err;
    }
  }

  private async update(
    input: Omit<ConstructorParameters<typeof UpdateCommand>[0], 'TableName' | 'Key'>,
    jobId: string,
  ): Promise<boolean> {
    try {
      await this.doc.send(
        new UpdateCommand({ ...input, TableName: this.table, Key: { [J.partitionKey]: jobId } }),
      );
      return true;
    } catch (err) {
      if (isConditionFailure(err)) return false;
      throw err;
    }
  }
}
