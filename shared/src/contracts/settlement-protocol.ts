/**
 * Completing a terminal job's `pending` settlement: the one implementation, used by the edge and
 * by the runner through a tiny port over their DynamoDB document clients (shared carries no AWS
 * SDK). Single-item conditional writes only (the local emulator has no transactions), so every
 * step is idempotent:
 *   1. tenant: ADD creditBalance :refund, ADD spentThisMonth -:refund, ADD pendingRefunds {m}
 *      if NOT contains(pendingRefunds, m) (m = `<completedAt>#<jobId>`; the balance part only for a
 *      quote reserved from the balance, the spend part only while spendMonth is still the job's)
 *   2. usage:  PUT the ledger item (key derived from the job)      if attribute_not_exists(sk)
 *   3. job:    SET settlement = 'done'                             if settlement = 'pending'
 *   4. tenant: DELETE the markers older than MARKER_RETENTION_MS
 * Step 1 applies at most once per job while its marker exists; markers outlive any caller holding a
 * stale `pending` record, so a crash between steps is completed by the next caller without a
 * second refund.
 */

import { TABLES } from '../config-keys.js';
import { TENANT_PENDING_REFUNDS, usageRecordOf } from './billing.js';
import type { JobRecord, TenantRecord } from './job-record.js';

/** How long a refund marker outlives its job's completion. */
export const MARKER_RETENTION_MS = 3600_000;

export interface SettlementTables {
  tenants: string;
  jobs: string;
  /** The usage ledger; absent: no ledger item is written. */
  usage?: string;
}

/** A conditional write's outcome: a failed condition is an expected answer, not an error. */
export type WriteOutcome = 'written' | 'condition_failed';

export interface SettlementWrite {
  TableName: string;
  Key?: Record<string, unknown>;
  Item?: Record<string, unknown>;
  UpdateExpression?: string;
  ConditionExpression?: string;
  ExpressionAttributeNames?: Record<string, string>;
  ExpressionAttributeValues?: Record<string, unknown>;
}

/** The three DynamoDB document operations the protocol needs. */
export interface SettlementDb {
  update(input: SettlementWrite): Promise<WriteOutcome>;
  put(input: SettlementWrite): Promise<WriteOutcome>;
  /** Strongly consistent read of one item. */
  get(table: string, key: Record<string, unknown>): Promise<Record<string, unknown> | undefined>;
}

export async function completeSettlement(
  db: SettlementDb,
  tables: SettlementTables,
  job: JobRecord,
  now = Date.now(),
): Promise<void> {
  if (job.settlement !== 'pending') return;
  const tenantKey = { [TABLES.tenants.partitionKey]: job.tenantId };
  const marker = `${job.completedAt ?? 0}#${job.jobId}`;
  const refundsTenant = await refundToTenant(db, tables.tenants, job, marker);
  const usage = usageRecordOf(job);
  if (tables.usage && usage) {
    // The key is derived from the job: a repeat finds the item and changes nothing.
    await db.put({
      TableName: tables.usage,
      Item: usage as unknown as Record<string, unknown>,
      ConditionExpression: 'attribute_not_exists(#sk)',
      ExpressionAttributeNames: { '#sk': TABLES.usage.sortKey },
    });
  }
  await db.update({
    TableName: tables.jobs,
    Key: { [TABLES.jobs.partitionKey]: job.jobId },
    UpdateExpression: 'SET settlement = :done',
    ConditionExpression: 'settlement = :pending',
    ExpressionAttributeValues: { ':done': 'done', ':pending': 'pending' },
  });
  if (!refundsTenant) return;
  const tenant = (await db.get(tables.tenants, tenantKey)) as TenantRecord | undefined;
  const cutoff = now - MARKER_RETENTION_MS;
  const old = [...(tenant?.pendingRefunds ?? [])].filter((m) => Number(m.split('#')[0]) < cutoff);
  if (old.length === 0) return;
  await db.update({
    TableName: tables.tenants,
    Key: tenantKey,
    UpdateExpression: 'DELETE #p :m',
    ExpressionAttributeNames: { '#p': TENANT_PENDING_REFUNDS },
    ExpressionAttributeValues: { ':m': new Set(old) },
  });
}

/**
 * Step 1: gives a job's refund back to the tenant, at most once (the marker). The quote taken from
 * the balance goes back there; the quote counted in a month's spend comes off that counter only
 * while it still counts that month. One write does both; when it cannot (the month turned, or an
 * operator removed the balance), the part that still applies is tried alone, under the same marker.
 * Returns whether the tenant may hold a marker for this job.
 */
export async function refundToTenant(
  db: SettlementDb,
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
    const outcome = await db.update({
      TableName: tenantsTable,
      Key: { [TABLES.tenants.partitionKey]: job.tenantId },
      UpdateExpression: `ADD ${adds.join(', ')}`,
      ConditionExpression: conditions.join(' AND '),
      ExpressionAttributeNames: { '#p': TENANT_PENDING_REFUNDS },
      ExpressionAttributeValues: values,
    });
    // A failed condition: already applied by an earlier call (marker present), or this part no
    // longer applies; try the next combination.
    if (outcome === 'written') return true;
  }
  return true;
}
