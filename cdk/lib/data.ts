/**
 * DynamoDB tables with the key schema and index names of @sd3/shared TABLES, on-demand billing,
 * TTL on the records that expire, and point-in-time recovery.
 */
import { RemovalPolicy } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import { Construct } from 'constructs';
import type { DeployConfig } from './config.js';
import { TABLES } from './names.js';

export interface DataProps {
  config: DeployConfig;
}

export class Data extends Construct {
  readonly jobs: dynamodb.TableV2;
  readonly keys: dynamodb.TableV2;
  readonly tenants: dynamodb.TableV2;
  readonly idempotency: dynamodb.TableV2;
  readonly rateLimits: dynamodb.TableV2;
  readonly usage: dynamodb.TableV2;

  constructor(scope: Construct, id: string, props: DataProps) {
    super(scope, id);
    const retain = props.config.removal === 'retain';
    const common = {
      billing: dynamodb.Billing.onDemand(),
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      removalPolicy: retain ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY,
      deletionProtection: retain,
    };
    const S = dynamodb.AttributeType.STRING;
    const N = dynamodb.AttributeType.NUMBER;
    const j = TABLES.jobs;

    this.jobs = new dynamodb.TableV2(this, 'Jobs', {
      ...common,
      partitionKey: { name: j.partitionKey, type: S },
      timeToLiveAttribute: TABLES.ttlAttribute,
      globalSecondaryIndexes: [
        {
          indexName: j.byTenantIndex,
          partitionKey: { name: j.byTenantKey, type: S },
          sortKey: { name: j.byTenantSort, type: N },
          projectionType: dynamodb.ProjectionType.ALL,
        },
        {
          // Sparse: only queued jobs carry queuedModel, so counting ahead of a job reads little.
          indexName: j.queuedIndex,
          partitionKey: { name: j.queuedKey, type: S },
          sortKey: { name: j.queuedSort, type: N },
          projectionType: dynamodb.ProjectionType.KEYS_ONLY,
        },
        {
          // Sparse: jobs the crash-recovery reconciler still watches (until terminal, settled and
          // notified); projects the attributes a sweep decides on, none of which progress touches.
          indexName: j.openIndex,
          partitionKey: { name: j.openKey, type: S },
          sortKey: { name: j.openSort, type: N },
          projectionType: dynamodb.ProjectionType.INCLUDE,
          nonKeyAttributes: [...j.openProjection],
        },
      ],
    });
    this.keys = new dynamodb.TableV2(this, 'Keys', {
      ...common,
      partitionKey: { name: TABLES.keys.partitionKey, type: S },
    });
    this.tenants = new dynamodb.TableV2(this, 'Tenants', {
      ...common,
      partitionKey: { name: TABLES.tenants.partitionKey, type: S },
    });
    this.idempotency = new dynamodb.TableV2(this, 'Idempotency', {
      ...common,
      partitionKey: { name: TABLES.idempotency.partitionKey, type: S },
      timeToLiveAttribute: TABLES.ttlAttribute,
    });
    // Per-key request windows (expire via TTL) and job slots; shared by every edge instance.
    this.rateLimits = new dynamodb.TableV2(this, 'RateLimits', {
      ...common,
      partitionKey: { name: TABLES.rateLimits.partitionKey, type: S },
      timeToLiveAttribute: TABLES.ttlAttribute,
    });
    // The usage ledger: one item per settled job, read per tenant and time range (GET /v1/usage).
    this.usage = new dynamodb.TableV2(this, 'Usage', {
      ...common,
      partitionKey: { name: TABLES.usage.partitionKey, type: S },
      sortKey: { name: TABLES.usage.sortKey, type: S },
    });
  }

  get all(): dynamodb.TableV2[] {
    return [this.jobs, this.keys, this.tenants, this.idempotency, this.rateLimits, this.usage];
  }
}
