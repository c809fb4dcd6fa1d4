/**
 * The runner's half of settlement: completing a terminal job's `pending` settlement (refund and usage
 * item). The same idempotent protocol as the edge's DynamoBillingStore (edge/src/adapters/aws/dynamo-billing-store.ts;
 * the two packages never import each other):
 *   1. tenant: ADD creditBalance :refund, ADD pendingRefunds {m}  if NOT contains(pendingRefunds, m)
 *      (m = `<completedAt>#<jobId>`; only for a quote reserved from the balance)
 *   2. usage:  PUT the ledger item (key derived from the job)      if attribute_not_exists(sk)
 *   3. job:    SET settlement = 'done'                             if settlement = 'pending'
 *   4. tenant: DELETE the markers older than MARKER_RETENTION_MS
 * DynamoDB transactions would do this in one write, but the local emulator has none.
 */
import { type DynamoDBDocumentClient, GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import {
  type JobRecord,
  TABLES,
  TENANT_PENDING_REFUNDS,
  type TenantRecord,
  usageRecordOf,
} from '@sd3/shared';

function isConditionFailure(err: unknown): boolean {
  return err instanceof Error && err.name === 'ConditionalCheckFailedException';
}

/** How long a refund marker outlives its job's completion. */
export const MARKER_RETENTION_MS = 3600_000;

export interface SettlementTables {
  tenants: string;
  jobs: string;
  /** The usage ledger; absent: no ledger item is written. */
  usage?: string;
}

/** The settlement protocol above. */
export async function completeSettlement(
  doc: DynamoDBDocumentClient,
  tables: SettlementTables,
  job: JobRecord,
  now = Date.now(),
): Promise<void> {
  if (job.settlement !== 'pending') return;
  const tenantKey = { [TABLES.tenants.partitionKey]: job.tenantId };
  const marker = `${job.completedAt ?? 0}#${job.jobId}`;
  // Only a quote taken from the balance goes back to it.
  const refundsBalance = job.reserved === true && (job.refund ?? 0) > 0;
  if (refundsBalance) {
    try {
      await doc.send(
        new UpdateCommand({
          TableName: tables.tenants,
          Key: tenantKey,
          UpdateExpression: 'ADD creditBalance :r, #p :m',
          ConditionExpression: 'attribute_exists(creditBalance) AND NOT contains(#p, :id)',
          ExpressionAttributeNames: { '#p': TENANT_PENDING_REFUNDS },
          ExpressionAttributeValues: { ':r': job.refund, ':m': new Set([marker]), ':id': marker },
        }),
      );
    } catch (err) {
      // Already applied by an earlier call (or the balance was removed by an operator).
      if (!isConditionFailure(err)) throw err;
    }
  }
  const usage = usageRecordOf(job);
  if (tables.usage && usage) {
    try {
      await doc.send(
        new PutCommand({
          TableName: tables.usage,
          Item: usage,
          // The key is derived from the job: a repeat finds the item and changes nothing.
          ConditionExpression: 'attribute_not_exists(#sk)',
          ExpressionAttributeNames: { '#sk': TABLES.usage.sortKey },
        }),
      );
    } catch (err) {
      if (!isConditionFailure(err)) throw err;
    }
  }
  try {
    await doc.send(
      new UpdateCommand({
        TableName: tables.jobs,
        Key: { [TABLES.jobs.partitionKey]: job.jobId },
        UpdateExpression: 'SET settlement = :done',
        ConditionExpression: 'settlement = :pending',
        ExpressionAttributeValues: { ':done': 'done', ':pending': 'pending' },
      }),
    );
  } catch (err) {
    if (!isConditionFailure(err)) throw err;
  }
  if (!refundsBalance) return;
  const tenant = (
    await doc.send(new GetCommand({ TableName: tables.tenants, Key: tenantKey, ConsistentRead: true }))
  ).Item as TenantRecord | undefined;
  const cutoff = now - MARKER_RETENTION_MS;
  const old = [...(tenant?.pendingRefunds ?? [])].filter((m) => Number(m.split('#')[0]) < cutoff);
  if (old.length === 0) return;
  await doc.send(
    new UpdateCommand({
      TableName: tables.tenants,
      Key: tenantKey,
      UpdateExpression: 'DELETE #p :m',
      ExpressionAttributeNames: { '#p': TENANT_PENDING_REFUNDS },
      ExpressionAttributeValues: { ':m': new Set(old) },
    }),
  );
}
