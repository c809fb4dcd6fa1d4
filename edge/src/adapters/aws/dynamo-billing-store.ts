/**
 * BillingStore on DynamoDB: credit and spend-cap reservations with conditional writes, and the
 * completion of pending settlements through the shared protocol (@sd3/shared settlement-protocol.ts).
 */
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { type DynamoDBDocumentClient, GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import {
  completeSettlement,
  type JobRecord,
  parseReservationMarker,
  reservationMarker,
  type SettlementDb,
  type SettlementTables,
  spendMonthOf,
  TABLES,
  TENANT_OPEN_RESERVATIONS,
  type TenantRecord,
  type WriteOutcome,
} from '@sd3/shared';
import type { BillingStore, Reservation, ReservedFrom, SpendingRoom } from '../../ports/index.js';

function isConditionFailure(err: unknown): boolean {
  return (
    err instanceof ConditionalCheckFailedException ||
    (err instanceof Error && err.name === 'ConditionalCheckFailedException')
  );
}

/** Reservation attempts before giving up (each failure is a concurrent change to the tenant). */
const RESERVE_ATTEMPTS = 20;

/** The reservation an earlier, applied attempt made for this job, if its marker is on the tenant. */
function reservedEarlier(tenant: TenantRecord, jobId: string): Reservation | undefined {
  for (const text of tenant.openReservations ?? []) {
    const m = parseReservationMarker(text);
    if (m?.jobId !== jobId) continue;
    return {
      kind: 'reserved',
      marker: text,
      fromBalance: m.fromBalance,
      ...(m.spendMonth !== undefined ? { spendMonth: m.spendMonth } : {}),
    };
  }
  return undefined;
}

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
  async reserve(tenantId: string, quote: number, now: number, jobId: string): Promise<Reservation> {
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
      // A write DynamoDB applied whose answer was lost (and that the SDK or this loop retried) left
      // this job's marker: the quote is already reserved, so it must not be taken again.
      const applied = reservedEarlier(tenant, jobId);
      if (applied) return applied;
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
      const from: ReservedFrom = {
        fromBalance: balance !== undefined,
        ...(cap !== undefined ? { spendMonth: month } : {}),
      };
      // The marker travels in the same write: no reservation exists without it.
      const marker = reservationMarker({ at: now, jobId, quote, ...from });
      values[':marker'] = new Set([marker]);
      values[':jobMarker'] = marker;
      conditions.push('NOT contains(#open, :jobMarker)');
      try {
        await this.doc.send(
          new UpdateCommand({
            TableName: this.tables.tenants,
            Key: { [TABLES.tenants.partitionKey]: tenantId },
            UpdateExpression: `SET ${sets.join(', ')} ADD #open :marker`,
            ConditionExpression: conditions.join(' AND '),
            ExpressionAttributeNames: { '#open': TENANT_OPEN_RESERVATIONS },
            ExpressionAttributeValues: values,
          }),
        );
        return { kind: 'reserved', marker, ...from };
      } catch (err) {
        if (!isConditionFailure(err)) throw err;
      }
    }
    throw new Error(`could not reserve credits for tenant ${tenantId}: too many concurrent changes`);
  }

  async room(tenantId: string, now: number): Promise<SpendingRoom> {
    const tenant = (
      await this.doc.send(
        new GetCommand({
          TableName: this.tables.tenants,
          Key: { [TABLES.tenants.partitionKey]: tenantId },
          ProjectionExpression: 'creditBalance, monthlySpendCap, spendMonth, spentThisMonth',
        }),
      )
    ).Item as Partial<TenantRecord> | undefined;
    const cap = tenant?.monthlySpendCap;
    const spent = tenant?.spendMonth === spendMonthOf(now) ? (tenant.spentThisMonth ?? 0) : 0;
    return {
      ...(tenant?.creditBalance !== undefined ? { balance: tenant.creditBalance } : {}),
      ...(cap !== undefined ? { monthlySpendLeft: Math.max(0, cap - spent) } : {}),
    };
  }

  /**
   * One UpdateItem conditional on the marker: the quote goes back to the balance and to the month's
   * spend (only while the counter is still for the reserved month) and the marker is deleted. When
   * a part no longer applies (the month turned, the balance was removed) the rest is tried alone,
   * still under the marker; the last try only deletes it.
   */
  async release(tenantId: string, marker: string): Promise<'released' | 'absent'> {
    const parsed = parseReservationMarker(marker);
    if (!parsed) throw new Error(`not a reservation marker: ${JSON.stringify(marker.slice(0, 200))}`);
    const { quote, fromBalance, spendMonth } = parsed;
    const attempts: { balance: boolean; spend: boolean }[] = [];
    if (fromBalance && spendMonth !== undefined) attempts.push({ balance: true, spend: true });
    if (fromBalance) attempts.push({ balance: true, spend: false });
    if (spendMonth !== undefined) attempts.push({ balance: false, spend: true });
    attempts.push({ balance: false, spend: false });
    for (const a of attempts) {
      const adds: string[] = [];
      const conditions = ['contains(#open, :m)'];
      const values: Record<string, unknown> = { ':m': marker, ':mset': new Set([marker]) };
      if (a.balance && quote > 0) {
        adds.push('creditBalance :q');
        conditions.push('attribute_exists(creditBalance)');
        values[':q'] = quote;
      }
      if (a.spend && quote > 0) {
        adds.push('spentThisMonth :neg');
        conditions.push('spendMonth = :month');
        values[':neg'] = -quote;
        values[':month'] = spendMonth;
      }
      try {
        await this.doc.send(
          new UpdateCommand({
            TableName: this.tables.tenants,
            Key: { [TABLES.tenants.partitionKey]: tenantId },
            UpdateExpression: `${adds.length ? `ADD ${adds.join(', ')} ` : ''}DELETE #open :mset`,
            ConditionExpression: conditions.join(' AND '),
            ExpressionAttributeNames: { '#open': TENANT_OPEN_RESERVATIONS },
            ExpressionAttributeValues: values,
          }),
        );
        return 'released';
      } catch (err) {
        if (!isConditionFailure(err)) throw err;
      }
    }
    // Even the marker-only delete found no marker: released (or confirmed) before.
    return 'absent';
  }

  async confirm(tenantId: string, marker: string): Promise<void> {
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.tables.tenants,
          Key: { [TABLES.tenants.partitionKey]: tenantId },
          UpdateExpression: 'DELETE #open :mset',
          ConditionExpression: 'contains(#open, :m)',
          ExpressionAttributeNames: { '#open': TENANT_OPEN_RESERVATIONS },
          ExpressionAttributeValues: { ':m': marker, ':mset': new Set([marker]) },
        }),
      );
    } catch (err) {
      if (!isConditionFailure(err)) throw err;
    }
  }

  async completeSettlement(job: JobRecord): Promise<void> {
    await completeSettlement(documentSettlementDb(this.doc), this.tables, job);
  }
}

/** The protocol's three operations on a lib-dynamodb client; a failed condition is an outcome. */
function documentSettlementDb(doc: DynamoDBDocumentClient): SettlementDb {
  const write = async (send: () => Promise<unknown>): Promise<WriteOutcome> => {
    try {
      await send();
      return 'written';
    } catch (err) {
      if (isConditionFailure(err)) return 'condition_failed';
      throw err;
    }
  };
  return {
    update: (input) =>
      write(() => doc.send(new UpdateCommand(input as ConstructorParameters<typeof UpdateCommand>[0]))),
    put: (input) =>
      write(() => doc.send(new PutCommand(input as ConstructorParameters<typeof PutCommand>[0]))),
    get: async (table, key) =>
      (await doc.send(new GetCommand({ TableName: table, Key: key, ConsistentRead: true }))).Item,
  };
}
