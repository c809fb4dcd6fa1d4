/**
 * The webhook delivery log, kept in the job's item (`deliveries`, a map event id -> record), so it
 * expires with the job and needs no table of its own. Every change is conditional:
 *   - `claim` takes an attempt only when the event is not delivered, belongs to the message's
 *     resend round, has exactly `attempt - 1` attempts recorded and no live claim: a redelivered
 *     or duplicated queue message finds the condition false and sends nothing;
 *   - `record` appends the attempt only while the claim is still the caller's.
 * At-least-once edge: a notifier that dies after the receiver answered 2xx but before `record`
 * leaves the claim to expire, and the redelivered message posts again (receivers dedupe on
 * `webhook-id`, which is the stable event id).
 */
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { type DynamoDBDocumentClient, GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { type DeliveryAttempt, type DeliveryRecord, type EventType, TABLES } from '@sd3/shared';

/** The stored form: the public record plus the claim and where the current round started. */
export interface StoredDelivery extends DeliveryRecord {
  /** Epoch ms until which one notifier holds the attempt in hand. */
  claim_until?: number;
  claim_token?: string;
  /** Attempts recorded before the current round began (retry delays count from there). */
  round_start: number;
}

export type ClaimOutcome =
  | { kind: 'claimed'; record: StoredDelivery; token: string }
  /** Delivered, given up, another round, or this attempt already ran: nothing to do. */
  | { kind: 'skip'; record: StoredDelivery | null; why: string };

export interface AttemptResult {
  attempt: DeliveryAttempt;
  state: DeliveryRecord['state'];
  nextAttemptAt: string | null;
  deliveredAt: string | null;
}

export interface DeliveryStore {
  list(jobId: string): Promise<StoredDelivery[]>;
  get(jobId: string, eventId: string): Promise<StoredDelivery | null>;
  claim(
    jobId: string,
    init: { eventId: string; eventType: EventType; url: string },
    round: number,
    attempt: number,
    now: number,
    claimMs: number,
  ): Promise<ClaimOutcome>;
  /** Appends the attempt and the new state; false when the claim was lost meanwhile. */
  record(jobId: string, eventId: string, token: string, result: AttemptResult): Promise<boolean>;
  /** Starts a new round (a resend): pending again, any claim dropped; returns the record. */
  resend(
    jobId: string,
    init: { eventId: string; eventType: EventType; url: string },
  ): Promise<StoredDelivery>;
}

function isConditionFailure(err: unknown): boolean {
  return (
    err instanceof ConditionalCheckFailedException ||
    (err instanceof Error && err.name === 'ConditionalCheckFailedException')
  );
}

const J = TABLES.jobs;

function initial(init: { eventId: string; eventType: EventType; url: string }): StoredDelivery {
  return {
    event_id: init.eventId,
    event_type: init.eventType,
    url: init.url,
    state: 'pending',
    round: 1,
    attempts: [],
    next_attempt_at: null,
    delivered_at: null,
    round_start: 0,
  };
}

export class DynamoDeliveryStore implements DeliveryStore {
  constructor(
    private readonly doc: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  private key(jobId: string) {
    return { [J.partitionKey]: jobId };
  }

  async list(jobId: string): Promise<StoredDelivery[]> {
    const out = await this.doc.send(
      new GetCommand({
        TableName: this.table,
        Key: this.key(jobId),
        ProjectionExpression: 'deliveries',
        ConsistentRead: true,
      }),
    );
    const map = (out.Item?.['deliveries'] ?? {}) as Record<string, StoredDelivery>;
    return Object.values(map).sort((a, b) => a.event_id.localeCompare(b.event_id));
  }

  async get(jobId: string, eventId: string): Promise<StoredDelivery | null> {
    const out = await this.doc.send(
      new GetCommand({
        TableName: this.table,
        Key: this.key(jobId),
        ProjectionExpression: 'deliveries.#e',
        ExpressionAttributeNames: { '#e': eventId },
        ConsistentRead: true,
      }),
    );
    const map = out.Item?.['deliveries'] as Record<string, StoredDelivery> | undefined;
    return map?.[eventId] ?? null;
  }

  /** Creates the map and the event's entry when missing (two writes: DynamoDB refuses overlapping paths). */
  private async ensure(jobId: string, init: { eventId: string; eventType: EventType; url: string }) {
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: this.key(jobId),
          UpdateExpression: 'SET deliveries = if_not_exists(deliveries, :empty)',
          ConditionExpression: 'attribute_exists(#id)',
          ExpressionAttributeNames: { '#id': J.partitionKey },
          ExpressionAttributeValues: { ':empty': {} },
        }),
      );
    } catch (err) {
      if (isConditionFailure(err)) throw new Error(`job ${jobId} does not exist`);
      throw err;
    }
    await this.doc.send(
      new UpdateCommand({
        TableName: this.table,
        Key: this.key(jobId),
        UpdateExpression: 'SET deliveries.#e = if_not_exists(deliveries.#e, :init)',
        ExpressionAttributeNames: { '#e': init.eventId },
        ExpressionAttributeValues: { ':init': initial(init) },
      }),
    );
  }

  async claim(
    jobId: string,
    init: { eventId: string; eventType: EventType; url: string },
    round: number,
    attempt: number,
    now: number,
    claimMs: number,
  ): Promise<ClaimOutcome> {
    await this.ensure(jobId, init);
    const token = crypto.randomUUID();
    try {
      const out = await this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: this.key(jobId),
          UpdateExpression: 'SET deliveries.#e.claim_until = :until, deliveries.#e.claim_token = :token',
          ConditionExpression:
            'deliveries.#e.#state = :pending AND deliveries.#e.#round = :round AND ' +
            'size(deliveries.#e.attempts) = :done AND ' +
            '(attribute_not_exists(deliveries.#e.claim_until) OR deliveries.#e.claim_until < :now)',
          ExpressionAttributeNames: { '#e': init.eventId, '#state': 'state', '#round': 'round' },
          ExpressionAttributeValues: {
            ':pending': 'pending',
            ':round': round,
            ':done': attempt - 1,
            ':now': now,
            ':until': now + claimMs,
            ':token': token,
          },
          ReturnValues: 'ALL_NEW',
        }),
      );
      const record = (out.Attributes!['deliveries'] as Record<string, StoredDelivery>)[init.eventId]!;
      return { kind: 'claimed', record, token };
    } catch (err) {
      if (!isConditionFailure(err)) throw err;
    }
    const record = await this.get(jobId, init.eventId);
    if (!record) return { kind: 'skip', record, why: 'no delivery record' };
    if (record.state !== 'pending') return { kind: 'skip', record, why: `already ${record.state}` };
    if (record.round !== round) return { kind: 'skip', record, why: `superseded by round ${record.round}` };
    if (record.attempts.length !== attempt - 1) {
      return { kind: 'skip', record, why: `attempt ${attempt} is not next (${record.attempts.length} ran)` };
    }
    return { kind: 'skip', record, why: 'another notifier holds this attempt' };
  }

  async record(jobId: string, eventId: string, token: string, result: AttemptResult): Promise<boolean> {
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: this.key(jobId),
          UpdateExpression:
            'SET deliveries.#e.attempts = list_append(deliveries.#e.attempts, :a), deliveries.#e.#state = :s, ' +
            'deliveries.#e.next_attempt_at = :next, deliveries.#e.delivered_at = :delivered ' +
            'REMOVE deliveries.#e.claim_until, deliveries.#e.claim_token',
          ConditionExpression: 'deliveries.#e.claim_token = :token',
          ExpressionAttributeNames: { '#e': eventId, '#state': 'state' },
          ExpressionAttributeValues: {
            ':a': [result.attempt],
            ':s': result.state,
            ':next': result.nextAttemptAt,
            ':delivered': result.deliveredAt,
            ':token': token,
          },
        }),
      );
      return true;
    } catch (err) {
      if (isConditionFailure(err)) return false;
      throw err;
    }
  }

  async resend(
    jobId: string,
    init: { eventId: string; eventType: EventType; url: string },
  ): Promise<StoredDelivery> {
    await this.ensure(jobId, init);
    // Read-modify-write on the round, conditional on the round read, so two resends make two rounds.
    for (let i = 0; i < 5; i++) {
      const current = (await this.get(jobId, init.eventId))!;
      try {
        const out = await this.doc.send(
          new UpdateCommand({
            TableName: this.table,
            Key: this.key(jobId),
            UpdateExpression:
              'SET deliveries.#e.#round = :next, deliveries.#e.#state = :pending, deliveries.#e.#url = :url, ' +
              'deliveries.#e.round_start = :rs, deliveries.#e.next_attempt_at = :null ' +
              'REMOVE deliveries.#e.claim_until, deliveries.#e.claim_token',
            ConditionExpression: 'deliveries.#e.#round = :round AND size(deliveries.#e.attempts) = :rs',
            ExpressionAttributeNames: {
              '#e': init.eventId,
              '#round': 'round',
              '#state': 'state',
              '#url': 'url',
            },
            ExpressionAttributeValues: {
              ':next': current.round + 1,
              ':round': current.round,
              ':rs': current.attempts.length,
              ':pending': 'pending',
              ':url': init.url,
              ':null': null,
            },
            ReturnValues: 'ALL_NEW',
          }),
        );
        return (out.Attributes!['deliveries'] as Record<string, StoredDelivery>)[init.eventId]!;
      } catch (err) {
        if (!isConditionFailure(err)) throw err;
      }
    }
    throw new Error(`delivery ${init.eventId}: resends conflicting, giving up`);
  }
}
