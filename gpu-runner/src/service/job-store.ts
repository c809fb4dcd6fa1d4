/**
 * The runner's side of the JobRecord transitions (shared/contracts/job-record.ts), on DynamoDB.
 *
 * Every write is an UpdateItem whose condition repeats the state check (status, runnerId, lease),
 * so a redelivered message or a second runner can never claim, progress or finish a job it does
 * not hold. Writes that append an event also check `size(events)` against the list the event id
 * was computed from (`nextEvent` numbers events by position): when the edge or another runner
 * appended in between, the write fails, the record is read again and the decision is redone.
 * Event ids therefore stay dense and unique under redelivery and concurrent writers.
 */
import {
  type DynamoDBDocumentClient,
  GetCommand,
  UpdateCommand,
  type UpdateCommandInput,
} from '@aws-sdk/lib-dynamodb';
import {
  type EventType,
  isTerminal,
  type JobEvent,
  type JobOutputRecord,
  type JobPreviewRecord,
  type JobRecord,
  type JobTimings,
  nextEvent,
  settlementFields,
  terminalCostData,
} from '@sd3/shared';
import { completeSettlement } from './settlement.js';

export interface JobError {
  code: string;
  message: string;
}

export type ClaimResult =
  | { kind: 'claimed'; record: JobRecord }
  /** Already succeeded, failed or canceled: a redelivery after the finish. */
  | { kind: 'terminal'; record: JobRecord }
  /** Running under another runner's live lease. */
  | { kind: 'held'; record: JobRecord }
  /** The record belongs to another tenant than the envelope says. */
  | { kind: 'mismatch'; record: JobRecord }
  | { kind: 'missing' };

export interface LeaseState {
  /** False when this runner no longer holds the job (its lease lapsed and someone else claimed it). */
  held: boolean;
  cancelRequested: boolean;
}

export type FailResult = 'failed' | 'terminal' | 'held' | 'missing';

/** What the job handler needs from the job table (an interface so the loop is testable as a unit). */
export interface JobStore {
  get(jobId: string): Promise<JobRecord | undefined>;
  claim(jobId: string, expect: { tenantId: string }): Promise<ClaimResult>;
  /** Extends the lease (heartbeat) and reports a cancel request. */
  renew(jobId: string): Promise<LeaseState>;
  /** Records step i of N, extends the lease, appends a progress event. */
  progress(jobId: string, step: number, totalSteps: number): Promise<LeaseState>;
  /**
   * Replaces the job's live preview (only the latest is kept), records the progress, extends the
   * lease and appends a `generation.preview` event holding the preview's step only.
   */
  preview(
    jobId: string,
    preview: JobPreviewRecord,
    progress: { step: number; totalSteps: number },
  ): Promise<LeaseState>;
  /** `stepsRun` completes the progress (the last throttled progress write may be behind). */
  finishSucceeded(
    jobId: string,
    outputs: JobOutputRecord[],
    timings: JobTimings,
    stepsRun?: number,
  ): Promise<boolean>;
  finishFailed(jobId: string, error: JobError, timings?: JobTimings): Promise<boolean>;
  finishCanceled(
    jobId: string,
    stepsCompleted: number,
    totalSteps: number,
    timings?: JobTimings,
  ): Promise<boolean>;
  /** Gives the job up while it stays running: the lease ends now, so the next receive can claim it. */
  releaseLease(jobId: string): Promise<boolean>;
  /** Any non-terminal state (not under another runner's live lease) -> failed. */
  failNonTerminal(jobId: string, error: JobError): Promise<FailResult>;
}

export interface DynamoJobStoreOptions {
  ddb: DynamoDBDocumentClient;
  table: string;
  runnerId: string;
  leaseMs: number;
  now?: () => number;
  /**
   * Called after each write that appended an event, with the record as written (the events
   * queue publisher for webhooks). Must not throw; it is not awaited by the write.
   */
  onEvent?: (record: JobRecord, event: JobEvent) => void;
  /**
   * The tenants table: refunds of settled jobs go back to the tenant's credit balance. Without it
   * charges are still recorded on the jobs, and a pending refund is completed by the edge on read.
   */
  tenantsTable?: string;
  /** The usage ledger: each settled job writes one item there. */
  usageTable?: string;
}

interface Change {
  set: string[];
  remove?: string[];
  /** Must hold for the write, besides the event-sequence check that `mutate` ANDs to it (top-level ORs go in parentheses; DynamoDB refuses redundant ones). */
  condition: string;
  values?: Record<string, unknown>;
  event?: { type: EventType; data: Record<string, unknown> };
}

type Decision<R> = { refuse: R } | { change: Change };
type Mutation<R> = { ok: true; record: JobRecord } | { ok: false; reason: R | 'missing'; record?: JobRecord };

/** Claimable: queued, or running under a lapsed lease, a released lease or this runner's own. */
const CLAIMABLE =
  '(#status = :queued OR (#status = :running AND ' +
  '(attribute_not_exists(#leaseUntil) OR #leaseUntil < :now OR #runnerId = :me)))';
const HELD_BY_ME = '#status = :running AND #runnerId = :me';

const MAX_CONFLICTS = 8;

function isConditionFailure(err: unknown): boolean {
  return err instanceof Error && err.name === 'ConditionalCheckFailedException';
}

/** Expression attribute maps holding exactly the names and values the expressions use. */
function expressionMaps(exprs: string[], values: Record<string, unknown>) {
  const text = exprs.join(' ');
  const names: Record<string, string> = {};
  for (const m of text.matchAll(/#(\w+)/g)) names[`#${m[1]}`] = m[1]!;
  const used: Record<string, unknown> = {};
  for (const m of text.matchAll(/:(\w+)/g)) {
    const key = `:${m[1]}`;
    if (!(key in values)) throw new Error(`job store: expression value ${key} is not defined`);
    used[key] = values[key];
  }
  return { ExpressionAttributeNames: names, ExpressionAttributeValues: used };
}

const roundTimings = (t: JobTimings): JobTimings =>
  Object.fromEntries(
    Object.entries(t)
      .filter(([, v]) => typeof v === 'number' && Number.isFinite(v))
      .map(([k, v]) => [k, Math.round(v as number)]),
  ) as JobTimings;

export class DynamoJobStore implements JobStore {
  private readonly ddb: DynamoDBDocumentClient;
  private readonly table: string;
  private readonly runnerId: string;
  private readonly leaseMs: number;
  private readonly now: () => number;
  private readonly onEvent: ((record: JobRecord, event: JobEvent) => void) | undefined;
  private readonly tenantsTable: string | undefined;
  private readonly usageTable: string | undefined;
  /** The last record this store wrote or read, so a write in the common case needs no read first. */
  private last: JobRecord | undefined;

  constructor(options: DynamoJobStoreOptions) {
    this.ddb = options.ddb;
    this.table = options.table;
    this.runnerId = options.runnerId;
    this.leaseMs = options.leaseMs;
    this.now = options.now ?? Date.now;
    this.onEvent = options.onEvent;
    this.tenantsTable = options.tenantsTable;
    this.usageTable = options.usageTable;
  }

  /** Completes a pending refund (idempotent); a failure is left for the next reader to complete. */
  private async settle(record: JobRecord): Promise<void> {
    if (record.settlement !== 'pending' || !this.tenantsTable) return;
    try {
      await completeSettlement(
        this.ddb,
        {
          tenants: this.tenantsTable,
          jobs: this.table,
          ...(this.usageTable ? { usage: this.usageTable } : {}),
        },
        record,
        this.now(),
      );
    } catch {
      // The job stays `pending`; the edge completes it on the next read, a redelivery here.
    }
  }

  /** SET clauses and values for the charge decided with a terminal write (none for a free job). */
  private static billing(
    rec: JobRecord,
    outcome: 'succeeded' | 'failed' | 'canceled',
    stepsCompleted = 0,
    totalSteps = 1,
  ): { set: string[]; values: Record<string, unknown> } {
    const fields = settlementFields(rec, outcome, stepsCompleted, totalSteps);
    if (!('charge' in fields)) return { set: [], values: {} };
    return {
      set: ['#charge = :charge', '#refund = :refund', '#settlement = :settlement'],
      values: { ':charge': fields.charge, ':refund': fields.refund, ':settlement': fields.settlement },
    };
  }

  async get(jobId: string): Promise<JobRecord | undefined> {
    const out = await this.ddb.send(
      new GetCommand({ TableName: this.table, Key: { jobId }, ConsistentRead: true }),
    );
    const record = out.Item as JobRecord | undefined;
    if (record) this.last = record;
    return record;
  }

  private claimable(rec: JobRecord, now: number): boolean {
    return (
      rec.status === 'queued' ||
      (rec.status === 'running' &&
        (rec.leaseUntil === undefined || rec.leaseUntil < now || rec.runnerId === this.runnerId))
    );
  }

  private heldByMe(rec: JobRecord): boolean {
    return rec.status === 'running' && rec.runnerId === this.runnerId;
  }

  /**
   * Decides on the latest known record and writes conditionally; on a condition failure reads the
   * record again and decides again, so the outcome always reflects the state the write met.
   */
  private async mutate<R>(
    jobId: string,
    decide: (rec: JobRecord, now: number) => Decision<R>,
    fresh = false,
  ): Promise<Mutation<R>> {
    let rec = !fresh && this.last?.jobId === jobId ? this.last : await this.get(jobId);
    for (let attempt = 0; attempt < MAX_CONFLICTS; attempt++) {
      if (!rec) return { ok: false, reason: 'missing' };
      const now = this.now();
      const decision = decide(rec, now);
      if ('refuse' in decision) return { ok: false, reason: decision.refuse, record: rec };
      const { change } = decision;
      const values: Record<string, unknown> = {
        ':queued': 'queued',
        ':running': 'running',
        ':me': this.runnerId,
        ':now': now,
        ...change.values,
      };
      const set = [...change.set, '#updatedAt = :now'];
      let condition = change.condition;
      if (change.event) {
        values[':evs'] = [nextEvent(rec, change.event.type, change.event.data, now)];
        values[':evn'] = rec.events.length;
        set.push('#events = list_append(#events, :evs)');
        condition = `${condition} AND size(#events) = :evn`;
      }
      let update = `SET ${set.join(', ')}`;
      if (change.remove?.length) update += ` REMOVE ${change.remove.join(', ')}`;
      const input: UpdateCommandInput = {
        TableName: this.table,
        Key: { jobId },
        UpdateExpression: update,
        ConditionExpression: condition,
        ...expressionMaps([update, condition], values),
        ReturnValues: 'ALL_NEW',
      };
      try {
        const out = await this.ddb.send(new UpdateCommand(input));
        this.last = out.Attributes as JobRecord;
        if (change.event && this.onEvent) this.onEvent(this.last, (values[':evs'] as JobEvent[])[0]!);
        return { ok: true, record: this.last };
      } catch (err) {
        if (!isConditionFailure(err)) throw err;
        rec = await this.get(jobId);
      }
    }
    throw new Error(`job ${jobId}: ${MAX_CONFLICTS} conflicting writes in a row, giving up`);
  }

  async claim(jobId: string, expect: { tenantId: string }): Promise<ClaimResult> {
    const result = await this.mutate<'terminal' | 'held' | 'mismatch'>(
      jobId,
      (rec, now) => {
        if (rec.tenantId !== expect.tenantId) return { refuse: 'mismatch' };
        if (isTerminal(rec.status)) return { refuse: 'terminal' };
        if (!this.claimable(rec, now)) return { refuse: 'held' };
        return {
          change: {
            set: [
              '#status = :running',
              '#runnerId = :me',
              // A reclaim keeps the first start: queue wait is measured to the first attempt.
              '#startedAt = if_not_exists(#startedAt, :now)',
              '#leaseUntil = :lease',
              '#attempts = if_not_exists(#attempts, :zero) + :one',
            ],
            remove: ['#queuedModel'],
            condition: `#tenantId = :tenant AND ${CLAIMABLE}`,
            values: { ':lease': now + this.leaseMs, ':zero': 0, ':one': 1, ':tenant': expect.tenantId },
            event: { type: 'generation.started', data: { attempt: (rec.attempts ?? 0) + 1 } },
          },
        };
      },
      true,
    );
    if (result.ok) return { kind: 'claimed', record: result.record };
    if (result.reason === 'missing' || !result.record) return { kind: 'missing' };
    // A redelivery after a finish whose refund did not complete (a crash in between) completes it.
    if (result.reason === 'terminal') await this.settle(result.record);
    return { kind: result.reason, record: result.record };
  }

  private async extend(jobId: string, extra?: Partial<Change>): Promise<LeaseState> {
    const result = await this.mutate<'lost'>(jobId, (rec, now) => {
      if (!this.heldByMe(rec)) return { refuse: 'lost' };
      return {
        change: {
          set: ['#leaseUntil = :lease', ...(extra?.set ?? [])],
          condition: HELD_BY_ME,
          values: { ':lease': now + this.leaseMs, ...extra?.values },
          ...(extra?.event ? { event: extra.event } : {}),
        },
      };
    });
    if (!result.ok) return { held: false, cancelRequested: result.record?.cancelRequested === true };
    return { held: true, cancelRequested: result.record.cancelRequested === true };
  }

  renew(jobId: string): Promise<LeaseState> {
    return this.extend(jobId);
  }

  progress(jobId: string, step: number, totalSteps: number): Promise<LeaseState> {
    return this.extend(jobId, {
      set: ['#progress = :progress'],
      values: { ':progress': { step, totalSteps } },
      event: { type: 'generation.progress', data: { step, total_steps: totalSteps } },
    });
  }

  preview(
    jobId: string,
    preview: JobPreviewRecord,
    progress: { step: number; totalSteps: number },
  ): Promise<LeaseState> {
    return this.extend(jobId, {
      set: ['#progress = :progress', '#preview = :preview'],
      values: { ':progress': progress, ':preview': preview },
      event: { type: 'generation.preview', data: { step: preview.step, total_steps: preview.totalSteps } },
    });
  }

  private async finish(
    jobId: string,
    status: 'succeeded' | 'failed' | 'canceled',
    fields: Record<string, unknown>,
    data: Record<string, unknown>,
    steps: { completed: number; total: number } = { completed: 0, total: 1 },
  ): Promise<boolean> {
    const result = await this.mutate<'lost'>(jobId, (rec) => {
      if (!this.heldByMe(rec)) return { refuse: 'lost' };
      // The charge is part of the terminal write: decided exactly once, with the transition.
      const bill = DynamoJobStore.billing(rec, status, steps.completed, steps.total);
      const set = ['#status = :final', '#completedAt = :now', ...bill.set];
      const values: Record<string, unknown> = { ':final': status, ...bill.values };
      for (const [name, value] of Object.entries(fields)) {
        set.push(`#${name} = :${name}`);
        values[`:${name}`] = value;
      }
      return {
        change: {
          set,
          remove: ['#leaseUntil'],
          condition: HELD_BY_ME,
          values,
          event: {
            type: `generation.${status}`,
            data: { ...data, ...terminalCostData(rec, status, steps.completed, steps.total) },
          },
        },
      };
    });
    if (result.ok) await this.settle(result.record);
    return result.ok;
  }

  finishSucceeded(
    jobId: string,
    outputs: JobOutputRecord[],
    timings: JobTimings,
    stepsRun?: number,
  ): Promise<boolean> {
    const t = roundTimings(timings);
    // Object keys stay internal: the edge presigns them when it serves the job.
    const publicOutputs = outputs.map(({ key: _key, ...rest }) => rest);
    const progress = stepsRun === undefined ? {} : { progress: { step: stepsRun, totalSteps: stepsRun } };
    return this.finish(
      jobId,
      'succeeded',
      { outputs, timings: t, ...progress },
      { outputs: publicOutputs, timings: t },
    );
  }

  finishFailed(jobId: string, error: JobError, timings?: JobTimings): Promise<boolean> {
    const t = timings ? roundTimings(timings) : undefined;
    return this.finish(
      jobId,
      'failed',
      { error, ...(t ? { timings: t } : {}) },
      { error, ...(t ? { timings: t } : {}) },
    );
  }

  finishCanceled(
    jobId: string,
    stepsCompleted: number,
    totalSteps: number,
    timings?: JobTimings,
  ): Promise<boolean> {
    const t = timings ? roundTimings(timings) : undefined;
    return this.finish(
      jobId,
      'canceled',
      { progress: { step: stepsCompleted, totalSteps }, ...(t ? { timings: t } : {}) },
      { steps_completed: stepsCompleted, total_steps: totalSteps, ...(t ? { timings: t } : {}) },
      { completed: stepsCompleted, total: totalSteps },
    );
  }

  async releaseLease(jobId: string): Promise<boolean> {
    const result = await this.mutate<'lost'>(jobId, (rec, now) => {
      if (!this.heldByMe(rec)) return { refuse: 'lost' };
      return {
        change: {
          // Removing runnerId also fences this runner out: its late progress writes now fail.
          set: ['#leaseUntil = :past'],
          remove: ['#runnerId'],
          condition: HELD_BY_ME,
          values: { ':past': now - 1 },
        },
      };
    });
    return result.ok;
  }

  async failNonTerminal(jobId: string, error: JobError): Promise<FailResult> {
    const result = await this.mutate<'terminal' | 'held'>(
      jobId,
      (rec, now) => {
        if (isTerminal(rec.status)) return { refuse: 'terminal' };
        if (!this.claimable(rec, now)) return { refuse: 'held' };
        const bill = DynamoJobStore.billing(rec, 'failed');
        return {
          change: {
            set: ['#status = :failed', '#error = :error', '#completedAt = :now', ...bill.set],
            remove: ['#queuedModel', '#leaseUntil'],
            condition: CLAIMABLE,
            values: { ':failed': 'failed', ':error': error, ...bill.values },
            event: { type: 'generation.failed', data: { error, ...terminalCostData(rec, 'failed') } },
          },
        };
      },
      true,
    );
    if (result.ok) await this.settle(result.record);
    else if (result.reason === 'terminal' && result.record) await this.settle(result.record);
    return result.ok ? 'failed' : result.reason;
  }
}
