/**
 * BillingStore on DynamoDB. The emulators (and this code) use single-item conditional writes only,
 * so a settlement that spans the job, the tenant and the usage ledger is made idempotent instead of
 * transactional:
 *   1. tenant: ADD creditBalance :refund, ADD spentThisMonth -:refund, ADD pendingRefunds {m}
 *      if NOT contains(pendingRefunds, m) (m = `<completedAt>#<jobId>`; the balance part only for a
 *      quote reserved from the balance, the spend part only while spendMonth is still the job's)
 *   2. usage:  PUT the ledger item (key derived from the job)      if attribute_not_exists(sk)
 *   3. job:    SET settlement = 'done'                             if settlement = 'pending'
 *   4. tenant: DELETE the markers older than MARKER_RETENTION_MS
 * Step 1 applies at most once per job while its marker exists; markers are kept an hour after the
 * job finished, far longer than any caller holds a stale `pending` record, so a crash between any two
 * steps is completed by the next caller (the finishing writer, a read, a redelivery) without a second
 * refund and the marker set stays small.
 */
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { type DynamoDBDocumentClient, GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import {
  type JobRecord,
  spendMonthOf,
  TABLES,
  TENANT_PENDING_REFUNDS,
  type TenantRecord,
  usageRecordOf,
} from '@sd3/shared';
import type { BillingStore, Reservation, ReservedFrom } from '../../ports/index.js';

function isConditionFailure(err: unknown): boolean {
  return (
    err instanceof ConditionalCheckFailedException ||
    (err instanceof Error && err.name === 'ConditionalCheckFailedException')
  );
}

/** How long a refund marker outlives its job's completion. */
export const MARKER_RETENTION_MS = 3600_000;

/** Reservation attempts before giving up (each failure is a concurrent change to the tenant). */
const RESERVE_ATTEMPTS = 20;

export class DynamoBillingStore implements BillingStore {
  constructor(
    private readonly doc: DynamoDBDocumentClient,
    private readonly tables: SettlementTables,
  ) {}

  /**
   * Reads the tenant, then takes the quote in one conditional UpdateItem that re-checks what the read
   * saw: the balance still covers the quote, the cap is unchanged and this month's spend is still at
   * most cap − quote (same month), or the counter is for an earlier month (then it restarts at the
   * quote). DynamoDB conditions have no arithmetic, so cap − quote is computed here and the cap itself
   * is part of the condition. A failed condition means a concurrent change: read again and retry.
   */
  async reserve(tenantId: string, quote: number, now: number): Promise<Reservation> {
    const month = spendMonthOf(now);
    for (let attempt = 0; attempt < RESERVE_ATTEMPTS; attempt++) {
      const tenant = (
        await this.doc.send(
          new GetCommand({
            TableName: this.tables.tenants,
            Key: { [TABLES.tenants.partitionKey]: tenantId },
            ConsistentRead: true,
          }),
        )
      ).Item as TenantRecord | undefined;
      if (tenant?.creditBalance === undefined && tenant?.monthlySpendCap === undefined) {
        return { kind: 'unenforced' };
      }
      const balance = tenant.creditBalance;
      const cap = tenant.monthlySpendCap;
      if (balance !== undefined && balance < quote) return { kind: 'insufficient', balance };
      const sameMonth = tenant.spendMonth === month && tenant.spentThisMonth !== undefined;
      const spent = sameMonth ? (tenant.spentThisMonth ?? 0) : 0;
      if (cap !== undefined && spent + quote > cap) return { kind: 'over_cap', cap, spent, month };

      const sets: string[] = [];
      const conditions: string[] = [];
      const values: Record<string, unknown> = { ':q': quote };
      if (balance !== undefined) {
        sets.push('creditBalance = creditBalance - :q');
        conditions.push('creditBalance >= :q');
      } else {
        conditions.push('attribute_not_exists(creditBalance)');
      }
      if (cap !== undefined) {
        values[':cap'] = cap;
        values[':month'] = month;
        conditions.push('monthlySpendCap = :cap');
        if (sameMonth) {
          values[':limit'] = cap - quote;
          sets.push('spentThisMonth = spentThisMonth + :q');
          conditions.push('spendMonth = :month AND spentThisMonth <= :limit');
        } else {
          // A new month (or the first capped create): the counter restarts at this quote.
          sets.push('spendMonth = :month, spentThisMonth = :q');
          conditions.push(
            '(attribute_not_exists(spendMonth) OR spendMonth <> :month OR attribute_not_exists(spentThisMonth))',
          );
        }
      } else {
        conditions.push('attribute_not_exists(monthlySpendCap)');
      }
      try {
        await this.doc.send(
          new UpdateCommand({
            TableName: this.tables.tenants,
            Key: { [TABLES.tenants.partitionKey]: tenantId },
            UpdateExpression: `SET ${sets.join(', ')}`,
            ConditionExpression: conditions.join(' AND '),
            ExpressionAttributeValues: values,
          }),
        );
        return {
          kind: 'reserved',
          fromBalance: balance !== undefined,
          ...(cap !== undefined ? { spendMonth: month } : {}),
        };
      } catch (err) {
        if (!isConditionFailure(err)) throw err;
      }
    }
    throw new Error(`could not reserve credits for tenant ${tenantId}: too many concurrent changes`);
  }

  async release(tenantId: string, amount: number, from: ReservedFrom): Promise<void> {
    if (amount <= 0) return;
    const key = { [TABLES.tenants.partitionKey]: tenantId };
    if (from.fromBalance) {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.tables.tenants,
          Key: key,
          UpdateExpression: 'ADD creditBalance :r',
          ConditionExpression: 'attribute_exists(creditBalance)',
          ExpressionAttributeValues: { ':r': amount },
        }),
      );
    }
    if (from.spendMonth !== undefined) {
      try {
        await this.doc.send(
          new UpdateCommand({
            TableName: this.tables.tenants,
            Key: key,
            UpdateExpression: 'ADD spentThisMonth :r',
            // Only the month the quote was counted in; a new month already started from zero.
            ConditionExpression: 'spendMonth = :month',
            ExpressionAttributeValues: { ':r': -amount, ':month': from.spendMonth },
          }),
        );
      } catch (err) {
        if (!isConditionFailure(err)) throw err;
      }
    }
  }

  async completeSettlement(job: JobRecord): Promise<void> {
    await completeSettlement(this.doc, this.tables, job);
  }
}

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
