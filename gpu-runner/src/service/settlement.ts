/**
 * The runner's half of settlement: the shared protocol (@sd3/shared settlement-protocol.ts) over the
 * runner's DynamoDB document client.
 */
import { type DynamoDBDocumentClient, GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import {
  type JobRecord,
  type SettlementDb,
  type SettlementTables,
  completeSettlement as settle,
  type WriteOutcome,
} from '@sd3/shared';

function isConditionFailure(err: unknown): boolean {
  return err instanceof Error && err.name === 'ConditionalCheckFailedException';
}

/** The protocol's three operations on a lib-dynamodb client; a failed condition is an outcome. */
export function documentSettlementDb(doc: DynamoDBDocumentClient): SettlementDb {
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

export type { SettlementTables };

export function completeSettlement(
  doc: DynamoDBDocumentClient,
  tables: SettlementTables,
  job: JobRecord,
  now = Date.now(),
): Promise<void> {
  return settle(documentSettlementDb(doc), tables, job, now);
}
