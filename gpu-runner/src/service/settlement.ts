/**
 * The runner's half of settlement: completing a terminal job's `pending` settlement (refund and usage
 * item). The same idempotent protocol as the edge's DynamoBillingStore (edge/src/adapters/aws/dynamo-billing-store.ts;
 * the two packages never import each other):
 *   1. tenant: ADD creditBalance :refund, ADD spentThisMonth -:refund, ADD pendingRefunds {m}
 *      if NOT contains(pendingRefunds, m) (m = `<completedAt>#<jobId>`; the balance part only for a
 *      quote reserved from the balance, the spend part only while spendMonth is still the job's)
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
  const refundsTenant = await refundToTenant(doc, tables.tenants, job, marker);
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
  if (!refundsTenant) return;
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

/**
 * Step 1: gives a job's refund back to the tenant, at most once (the marker). The quote taken from the
 * balance goes back there; the quote counted in a month's spend comes off that counter only while it
 * still counts that month. One write does both; when it cannot (the month turned, or an operator
 * removed the balance), the part that still applies is tried alone, under the same marker.
 * Returns whether the tenant may hold a marker for this job.
 */
export async function refundToTenant(
  doc: DynamoDBDocumentClient,
  tenantsTable: string,
  job: JobRecord,
  marker: string,
): Promise<boolean> {
  const refund = job.refund ?? 0;
  if (refund <= 0) return false;
  const toBalance = job.reserved === true;
  const spendMonth = job.spendMonth;
  if (!toBalance && spendMonth === undefined) return false;
  const attempts: { balance: boolean; spend: boolean }[] = [];
  if (toBalance && spendMonth !== undefined) attempts.push({ balance: true, spend: true });
  if (toBalance) attempts.push({ balance: true, spend: false });
  if (spendMonth !== undefined) attempts.push({ balance: false, spend: true });
  for (const a of attempts) {
    const adds = ['#p :m'];
    const conditions = ['NOT contains(#p, :id)'];
    const values: Record<string, unknown> = { ':m': new Set([marker]), ':id': marker };
    if (a.balance) {
      adds.push('creditBalance :r');
      conditions.push('attribute_exists(creditBalance)');
      values[':r'] = refund;
    }
    if (a.spend) {
      adds.push('spentThisMonth :neg');
      conditions.push('spendMonth = :month');
      values[':neg'] = -refund;
      values[':month'] = spendMonth;
    }
    try {
      await doc.send(
        new UpdateCommand({
          TableName: tenantsTable,
          Key: { [TABLES.tenants.partitionKey]: job.tenantId },
          UpdateExpression: `ADD ${adds.join(', ')}`,
          ConditionExpression: conditions.join(' AND '),
          ExpressionAttributeNames: { '#p': TENANT_PENDING_REFUNDS },
          ExpressionAttributeValues: values,
        }),
      );
      return true;
    } catch (err) {
      // Already applied by an earlier call (marker present), or this part no longer applies.
      if (!isConditionFailure(err)) throw err;
    }
  }
  return true;
}
