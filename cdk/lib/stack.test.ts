/**
 * Assertions on the synthesized templates of both presets: key resources of every construct, the
 * scaling policies, IAM boundaries, and cdk-nag (the synth throws on an unacknowledged finding).
 * One process for all of it: loading aws-cdk-lib costs seconds.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { ENV, MAX_RECEIVES, ModelInfoSchema, RECONCILER_ENV, TABLES } from '@sd3/shared';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { type BuiltApp, buildApp } from './app.js';
import { PRESETS, stopTimeoutSeconds } from './config.js';

const outRoot = mkdtempSync(join(tmpdir(), 'sd3-cdk-test-'));
after(() => rmSync(outRoot, { recursive: true, force: true }));

interface Synth extends BuiltApp {
  template: Template;
  json: { Resources: Record<string, { Type: string; Properties?: Record<string, unknown> }> };
  outdir: string;
}

let n = 0;
function synth(context: Record<string, unknown>): Synth {
  const outdir = join(outRoot, `out-${n++}`);
  const built = buildApp({ outdir, context });
  // Throws "Validation failed" when cdk-nag reports a finding nobody acknowledged.
  built.app.synth();
  const template = Template.fromStack(built.stack);
  return { ...built, template, json: template.toJSON() as Synth['json'], outdir };
}

const dev = synth({ preset: 'dev' });
const prod = synth({ preset: 'prod' });

/** A CloudFormation value rendered as text: Ref X → X, GetAtt X.Arn → X.Arn, Join → concatenation. */
function render(v: unknown): string {
  if (typeof v === 'string') return v;
  if (Array.isArray(v)) return v.map(render).join(',');
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    if ('Ref' in o) return String(o['Ref']);
    if ('Fn::GetAtt' in o) return (o['Fn::GetAtt'] as string[]).join('.');
    if ('Fn::Join' in o) {
      const [sep, parts] = o['Fn::Join'] as [string, unknown[]];
      return parts.map(render).join(sep);
    }
    if ('Fn::Sub' in o) return String(o['Fn::Sub']);
  }
  return JSON.stringify(v);
}

interface MetricQuery {
  Id: string;
  Expression?: string;
  ReturnData?: boolean;
  MetricStat?: {
    Metric: { MetricName: string; Namespace: string; Dimensions: { Name: string; Value: unknown }[] };
    Period?: number;
    Stat: string;
  };
}

interface Grant {
  actions: string[];
  resources: string[];
}

/** Every Allow statement attached to a role (inline policies of AWS::IAM::Policy resources). */
function grantsOf(s: Synth, roleLogicalId: string): Grant[] {
  const out: Grant[] = [];
  for (const r of Object.values(s.json.Resources)) {
    if (r.Type !== 'AWS::IAM::Policy') continue;
    const roles = ((r.Properties?.['Roles'] ?? []) as unknown[]).map(render);
    if (!roles.includes(roleLogicalId)) continue;
    const doc = r.Properties?.['PolicyDocument'] as { Statement: Record<string, unknown>[] };
    for (const st of doc.Statement) {
      if (st['Effect'] !== 'Allow') continue;
      const list = (x: unknown) => (Array.isArray(x) ? x : [x]);
      out.push({ actions: list(st['Action']).map(String), resources: list(st['Resource']).map(render) });
    }
  }
  return out;
}

function logicalIdOf(s: Synth, type: string, pathPart: string): string {
  const ids = Object.entries(s.json.Resources)
    .filter(([id, r]) => r.Type === type && id.includes(pathPart))
    .map(([id]) => id);
  assert.equal(ids.length, 1, `one ${type} matching ${pathPart}, found ${ids.join(', ')}`);
  return ids[0]!;
}

const allowed = (grants: Grant[], action: string) =>
  grants.filter((g) =>
    g.actions.some((a) => a === action || (a.endsWith('*') && action.startsWith(a.slice(0, -1)))),
  );

function idsOf(s: Synth) {
  return {
    media: logicalIdOf(s, 'AWS::S3::Bucket', 'StorageMedia'),
    models: logicalIdOf(s, 'AWS::S3::Bucket', 'StorageModels'),
    jobsTable: logicalIdOf(s, 'AWS::DynamoDB::GlobalTable', 'DataJobs'),
    jobsQueue: logicalIdOf(s, 'AWS::SQS::Queue', 'sd3mediumjobs'),
    dlq: logicalIdOf(s, 'AWS::SQS::Queue', 'sd3mediumdlq'),
    edgeRole: logicalIdOf(s, 'AWS::IAM::Role', 'EdgeFunctionServiceRole'),
    taskRole: logicalIdOf(s, 'AWS::IAM::Role', 'TaskTaskRole'),
    instanceRole: logicalIdOf(s, 'AWS::IAM::Role', 'InstanceRole'),
    tenantsTable: logicalIdOf(s, 'AWS::DynamoDB::GlobalTable', 'DataTenants'),
    usageTable: logicalIdOf(s, 'AWS::DynamoDB::GlobalTable', 'DataUsage'),
    eventsQueue: Object.keys(s.json.Resources).find(
      (k) => s.json.Resources[k]!.Type === 'AWS::SQS::Queue' && /^Queuesevents[0-9A-F]{8}$/.test(k),
    )!,
    notifierRole: logicalIdOf(s, 'AWS::IAM::Role', 'NotifierFunctionServiceRole'),
    notifierFn: logicalIdOf(s, 'AWS::Lambda::Function', 'NotifierFunction'),
  };
}

describe('both presets', () => {
  for (const s of [dev, prod]) {
    test(`${s.config.preset}: synthesizes with cdk-nag clean and no environment lookups`, () => {
      const report = JSON.parse(readFileSync(join(s.outdir, 'validation-report.json'), 'utf8')) as {
        pluginReports: { conclusion: string; violations: unknown[] }[];
      };
      assert.equal(report.pluginReports[0]?.conclusion, 'success');
      // The GPU AMI is resolved from the public SSM parameter at deploy time, not looked up at synth.
      const params = s.template.toJSON()['Parameters'] as Record<string, { Default?: string }>;
      assert.ok(
        Object.values(params).some(
          (p) => p.Default === '/aws/service/ecs/optimized-ami/amazon-linux-2023/gpu/recommended/image_id',
        ),
      );
    });

    test(`${s.config.preset}: storage is private, encrypted, TLS-only, with lifecycle expiry`, () => {
      s.template.resourceCountIs('AWS::S3::Bucket', 3);
      for (const [, b] of Object.entries(s.template.findResources('AWS::S3::Bucket'))) {
        const p = b['Properties'];
        assert.ok(p.BucketEncryption, 'encrypted');
        assert.deepEqual(p.PublicAccessBlockConfiguration, {
          BlockPublicAcls: true,
          BlockPublicPolicy: true,
          IgnorePublicAcls: true,
          RestrictPublicBuckets: true,
        });
      }
      s.template.resourceCountIs('AWS::S3::BucketPolicy', 3);
      for (const [, p] of Object.entries(s.template.findResources('AWS::S3::BucketPolicy'))) {
        const statements = p['Properties'].PolicyDocument.Statement as Record<string, unknown>[];
        assert.ok(
          statements.some(
            (st) =>
              st['Effect'] === 'Deny' &&
              JSON.stringify(st['Condition']) ===
                JSON.stringify({ Bool: { 'aws:SecureTransport': 'false' } }),
          ),
        );
      }
      s.template.hasResourceProperties('AWS::S3::Bucket', {
        LifecycleConfiguration: {
          Rules: Match.arrayWith([
            Match.objectLike({
              Prefix: 'inputs/',
              ExpirationInDays: s.config.retention.inputsDays,
              Status: 'Enabled',
            }),
            Match.objectLike({
              Prefix: 'outputs/',
              ExpirationInDays: s.config.retention.outputsDays,
              Status: 'Enabled',
            }),
          ]),
        },
        LoggingConfiguration: Match.objectLike({ LogFilePrefix: 'media/' }),
      });
    });

    test(`${s.config.preset}: tables follow shared TABLES, with TTL and point-in-time recovery`, () => {
      s.template.resourceCountIs('AWS::DynamoDB::GlobalTable', 6);
      for (const [, t] of Object.entries(s.template.findResources('AWS::DynamoDB::GlobalTable'))) {
        assert.deepEqual(t['Properties'].Replicas[0].PointInTimeRecoverySpecification, {
          PointInTimeRecoveryEnabled: true,
        });
      }
      const j = TABLES.jobs;
      s.template.hasResourceProperties('AWS::DynamoDB::GlobalTable', {
        KeySchema: [{ AttributeName: j.partitionKey, KeyType: 'HASH' }],
        TimeToLiveSpecification: { AttributeName: TABLES.ttlAttribute, Enabled: true },
        GlobalSecondaryIndexes: Match.arrayWith([
          {
            IndexName: j.byTenantIndex,
            KeySchema: [
              { AttributeName: j.byTenantKey, KeyType: 'HASH' },
              { AttributeName: j.byTenantSort, KeyType: 'RANGE' },
            ],
            Projection: { ProjectionType: 'ALL' },
          },
          {
            IndexName: j.queuedIndex,
            KeySchema: [
              { AttributeName: j.queuedKey, KeyType: 'HASH' },
              { AttributeName: j.queuedSort, KeyType: 'RANGE' },
            ],
            Projection: { ProjectionType: 'KEYS_ONLY' },
          },
        ]),
        AttributeDefinitions: Match.arrayWith([
          { AttributeName: j.byTenantSort, AttributeType: 'N' },
          { AttributeName: j.queuedKey, AttributeType: 'S' },
        ]),
      });
      for (const key of [
        TABLES.keys.partitionKey,
        TABLES.tenants.partitionKey,
        TABLES.idempotency.partitionKey,
        TABLES.rateLimits.partitionKey,
      ]) {
        s.template.hasResourceProperties('AWS::DynamoDB::GlobalTable', {
          KeySchema: [{ AttributeName: key, KeyType: 'HASH' }],
        });
      }
      s.template.hasResourceProperties('AWS::DynamoDB::GlobalTable', {
        KeySchema: [
          { AttributeName: TABLES.usage.partitionKey, KeyType: 'HASH' },
          { AttributeName: TABLES.usage.sortKey, KeyType: 'RANGE' },
        ],
      });
    });

    test(`${s.config.preset}: jobs queue with DLQ redrive and heartbeat-sized visibility; events queue`, () => {
      const ids = idsOf(s);
      s.template.hasResourceProperties('AWS::SQS::Queue', {
        VisibilityTimeout: s.config.queue.visibilityTimeoutSeconds,
        ReceiveMessageWaitTimeSeconds: 20,
        SqsManagedSseEnabled: true,
        RedrivePolicy: {
          deadLetterTargetArn: { 'Fn::GetAtt': [ids.dlq, 'Arn'] },
          maxReceiveCount: MAX_RECEIVES,
        },
      });
      // jobs + DLQ per model, events + its DLQ.
      s.template.resourceCountIs('AWS::SQS::Queue', 2 * s.config.models.length + 2);
      assert.ok(s.config.queue.visibilityTimeoutSeconds > 2 * s.config.queue.heartbeatSeconds);
    });

    test(`${s.config.preset}: edge is a Node 22 ESM Lambda with a streaming URL behind CloudFront`, () => {
      const fnId = logicalIdOf(s, 'AWS::Lambda::Function', 'EdgeFunction');
      const fn = s.json.Resources[fnId]!.Properties!;
      assert.equal(fn['Runtime'], 'nodejs22.x');
      assert.equal(fn['Handler'], 'index.handler');
      const env = (fn['Environment'] as { Variables: Record<string, unknown> }).Variables;
      for (const name of [
        ENV.JOBS_TABLE,
        ENV.KEYS_TABLE,
        ENV.TENANTS_TABLE,
        ENV.IDEMPOTENCY_TABLE,
        ENV.RATE_LIMITS_TABLE,
        ENV.USAGE_TABLE,
        ENV.MEDIA_BUCKET,
        ENV.JOB_QUEUES,
        ENV.SIGNING_KEYS,
        ENV.SIGNING_KEY_ID,
      ]) {
        assert.ok(env[name] !== undefined, `edge env ${name}`);
      }
      assert.match(render(env[ENV.SIGNING_KEYS]), /resolve:secretsmanager/);
      assert.match(render(env[ENV.JOB_QUEUES]), new RegExp(`"sd3-medium":"${ids(s).jobsQueue}"`));
      const models = JSON.parse(String(env['SD3_MODELS'])) as unknown[];
      for (const m of models) ModelInfoSchema.parse(m);
      s.template.hasResourceProperties('AWS::Lambda::Url', { InvokeMode: 'RESPONSE_STREAM' });
      s.template.hasResourceProperties('AWS::CloudFront::Distribution', {
        DistributionConfig: Match.objectLike({
          DefaultCacheBehavior: Match.objectLike({ ViewerProtocolPolicy: 'https-only' }),
          Logging: Match.anyValue(),
        }),
      });
    });

    test(`${s.config.preset}: GPU fleet on the ECS GPU AMI with spot/on-demand mix and managed draining`, () => {
      const model = s.config.models[0]!;
      s.template.hasResourceProperties('AWS::AutoScaling::AutoScalingGroup', {
        MinSize: '0',
        MaxSize: String(model.maxTasks),
        MixedInstancesPolicy: {
          InstancesDistribution: Match.objectLike({
            OnDemandBaseCapacity: s.config.capacity.onDemandBaseCapacity,
            OnDemandPercentageAboveBaseCapacity: s.config.capacity.onDemandPercentageAboveBase,
            SpotAllocationStrategy: 'price-capacity-optimized',
          }),
          LaunchTemplate: Match.objectLike({
            Overrides: model.instanceTypes.map((t) => ({ InstanceType: t })),
          }),
        },
      });
      s.template.hasResourceProperties('AWS::EC2::LaunchTemplate', {
        LaunchTemplateData: Match.objectLike({
          MetadataOptions: Match.objectLike({ HttpTokens: 'required' }),
          BlockDeviceMappings: [
            Match.objectLike({ Ebs: Match.objectLike({ Encrypted: true, VolumeType: 'gp3' }) }),
          ],
        }),
      });
      s.template.hasResourceProperties('AWS::ECS::CapacityProvider', {
        AutoScalingGroupProvider: Match.objectLike({
          ManagedScaling: Match.objectLike({ Status: 'ENABLED', TargetCapacity: 100 }),
          ManagedDraining: 'ENABLED',
          ManagedTerminationProtection: 'ENABLED',
        }),
      });
      s.template.hasResourceProperties('AWS::ECS::Cluster', {
        ClusterSettings: [{ Name: 'containerInsights', Value: 'enabled' }],
      });
    });

    test(`${s.config.preset}: runner task: one GPU, stop timeout sized to an image, cache on instance storage`, () => {
      const model = s.config.models[0]!;
      const td = Object.values(s.template.findResources('AWS::ECS::TaskDefinition'))[0]!['Properties'];
      const c = td.ContainerDefinitions[0];
      assert.deepEqual(c.ResourceRequirements, [{ Type: 'GPU', Value: '1' }]);
      assert.equal(c.StopTimeout, stopTimeoutSeconds(model));
      assert.ok(c.StopTimeout <= 120 && c.StopTimeout >= model.secondsPerImage);
      assert.deepEqual(td.Volumes, [{ Name: 'model-cache', Host: { SourcePath: '/opt/sd3/models' } }]);
      assert.deepEqual(c.MountPoints, [
        { ContainerPath: '/models', ReadOnly: false, SourceVolume: 'model-cache' },
      ]);
      const env = Object.fromEntries(
        (c.Environment as { Name: string; Value: unknown }[]).map((e) => [e.Name, e.Value]),
      );
      for (const name of [
        ENV.JOB_QUEUE_URL,
        ENV.DLQ_URL,
        ENV.JOBS_TABLE,
        ENV.TENANTS_TABLE,
        ENV.USAGE_TABLE,
        ENV.MEDIA_BUCKET,
        ENV.MODEL_ID,
        ENV.MODEL_DIR,
      ]) {
        assert.ok(env[name] !== undefined, `runner env ${name}`);
      }
      assert.equal(env[ENV.MODEL_DIR], `/models/${model.id}`);
      assert.equal(env[ENV.PROVIDER], 'cuda');
      assert.deepEqual(
        (c.Secrets as { Name: string }[]).map((x) => x.Name),
        [ENV.SIGNING_KEYS],
      );
      assert.ok(!(ENV.SIGNING_KEYS in env), 'the signing keys are not a plain variable');
      assert.match(
        render(c.Command),
        /models pull "s3:\/\/.*\/sd3-medium" "\$SD3_MODEL_DIR" && exec node gpu-runner\/bin\/sd3-runner\.js/,
      );
      assert.match(JSON.stringify(c.HealthCheck.Command), /healthz/);
      // The instance user data puts the cache on the instance-store NVMe.
      const lt = Object.values(s.template.findResources('AWS::EC2::LaunchTemplate'))[0]!;
      const userData = render(lt['Properties'].LaunchTemplateData.UserData['Fn::Base64']);
      assert.match(userData, /nvme-Amazon_EC2_NVMe_Instance_Storage/);
      assert.match(userData, /ECS_ENABLE_SPOT_INSTANCE_DRAINING=true/);
      assert.match(userData, /ECS_CLUSTER=/);
    });

    test(`${s.config.preset}: scaling: backlog per task with in-flight jobs, target from config; wake from zero`, () => {
      const model = s.config.models[0]!;
      const q = idsOf(s).jobsQueue;
      s.template.hasResourceProperties('AWS::ApplicationAutoScaling::ScalableTarget', {
        MinCapacity: model.minTasks,
        MaxCapacity: model.maxTasks,
        ScalableDimension: 'ecs:service:DesiredCount',
      });
      const policies = Object.values(s.template.findResources('AWS::ApplicationAutoScaling::ScalingPolicy'));
      const tracking = policies.find((p) => p['Properties'].PolicyType === 'TargetTrackingScaling')![
        'Properties'
      ];
      const cfg = tracking.TargetTrackingScalingPolicyConfiguration;
      assert.equal(cfg.TargetValue, model.targetBacklogPerTask);
      assert.equal(cfg.ScaleOutCooldown, s.config.scaling.scaleOutCooldownSeconds);
      const metrics = cfg.CustomizedMetricSpecification.Metrics as MetricQuery[];
      const byId = Object.fromEntries(metrics.map((m) => [m.Id, m]));
      assert.equal(byId['backlog']!.Expression, '(visible + inflight) / IF(running > 0, running, 1)');
      assert.equal(byId['backlog']!.ReturnData, true);
      assert.equal(byId['visible']!.MetricStat!.Metric.MetricName, 'ApproximateNumberOfMessagesVisible');
      assert.equal(byId['inflight']!.MetricStat!.Metric.MetricName, 'ApproximateNumberOfMessagesNotVisible');
      for (const id of ['visible', 'inflight']) {
        assert.equal(render(byId[id]!.MetricStat!.Metric.Dimensions[0]!.Value), `${q}.QueueName`);
      }
      assert.equal(byId['running']!.MetricStat!.Metric.MetricName, 'RunningTaskCount');
      assert.equal(byId['running']!.MetricStat!.Metric.Namespace, 'ECS/ContainerInsights');

      const step = policies.find((p) => p['Properties'].PolicyType === 'StepScaling')!['Properties'];
      assert.deepEqual(step.StepScalingPolicyConfiguration.StepAdjustments, [
        { MetricIntervalLowerBound: 0, ScalingAdjustment: 1 },
      ]);
      assert.equal(step.StepScalingPolicyConfiguration.AdjustmentType, 'ChangeInCapacity');
      const wake = Object.values(s.template.findResources('AWS::CloudWatch::Alarm')).find((a) =>
        JSON.stringify(a['Properties'].Metrics ?? []).includes(
          'IF(FILL(desired, 0) < 1 AND visible > 0, 1, 0)',
        ),
      )!['Properties'];
      assert.equal(wake.EvaluationPeriods, s.config.scaling.wakeEvaluationPeriods);
      const stat = (wake.Metrics as MetricQuery[]).find((m) => m.Id === 'visible')!.MetricStat!;
      assert.equal(stat.Period, s.config.scaling.wakePeriodSeconds);
      assert.ok(s.config.scaling.wakePeriodSeconds * s.config.scaling.wakeEvaluationPeriods <= 120);
      assert.ok(
        render(wake.AlarmActions).includes(
          Object.keys(
            s.template.findResources('AWS::ApplicationAutoScaling::ScalingPolicy', {
              Properties: { PolicyType: 'StepScaling' },
            }),
          )[0]!,
        ),
      );
    });

    test(`${s.config.preset}: monitoring: DLQ, oldest message, edge 5xx, runner failures, dashboard`, () => {
      const alarms = Object.values(s.template.findResources('AWS::CloudWatch::Alarm')).map(
        (a) => a['Properties'],
      );
      const text = alarms.map((a) => JSON.stringify(a));
      assert.ok(
        text.some((t) => t.includes('dead-letter') && t.includes('ApproximateNumberOfMessagesVisible')),
      );
      assert.ok(
        alarms.some(
          (a) =>
            a.MetricName === 'ApproximateAgeOfOldestMessage' &&
            a.Threshold === s.config.alarms.oldestMessageAgeSeconds,
        ),
      );
      assert.ok(text.some((t) => t.includes('Url5xxCount') && t.includes('UrlRequestCount')));
      assert.ok(alarms.some((a) => String(a.MetricName).startsWith('RunnerErrors-')));
      assert.ok(
        alarms.some(
          (a) =>
            a.MetricName === 'Errors' &&
            a.Namespace === 'AWS/Lambda' &&
            a.Threshold === 3 &&
            JSON.stringify(a.Dimensions).includes('Reconciler'),
        ),
        'the reconciler failing alarm',
      );
      s.template.hasResourceProperties('AWS::Logs::MetricFilter', {
        FilterPattern: '{ $.level = "error" }',
        MetricTransformations: [Match.objectLike({ MetricName: 'RunnerErrors-sd3-medium' })],
      });
      s.template.resourceCountIs('AWS::CloudWatch::Dashboard', 1);
      for (const a of alarms.filter(
        (x) => !String(x.AlarmDescription).includes('no runner task is desired'),
      )) {
        assert.ok(a.AlarmActions?.length, `alarm ${a.AlarmDescription} notifies`);
      }
    });
  }
});

function ids(s: Synth) {
  return idsOf(s);
}

describe('IAM boundaries', () => {
  const s = dev;
  const id = idsOf(s);
  const runner = grantsOf(s, id.taskRole);
  const edge = grantsOf(s, id.edgeRole);
  const instance = grantsOf(s, id.instanceRole);

  test('the runner consumes only its own queue and DLQ and sends only job events', () => {
    for (const action of ['sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:ChangeMessageVisibility']) {
      const resources = allowed(runner, action).flatMap((g) => g.resources);
      assert.deepEqual(resources.sort(), [`${id.dlq}.Arn`, `${id.jobsQueue}.Arn`].sort(), action);
    }
    assert.deepEqual(
      allowed(runner, 'sqs:SendMessage').flatMap((g) => g.resources),
      [`${id.eventsQueue}.Arn`],
    );
  });

  test('the runner reads inputs and its model, writes outputs, updates jobs, settles credits; nothing more', () => {
    const gets = allowed(runner, 's3:GetObject').flatMap((g) => g.resources);
    assert.deepEqual(gets.sort(), [`${id.media}.Arn/inputs/*`, `${id.models}.Arn/sd3-medium/*`].sort());
    const puts = allowed(runner, 's3:PutObject').flatMap((g) => g.resources);
    assert.deepEqual(puts, [`${id.media}.Arn/outputs/*`], 'runner cannot PutObject inputs/');
    const dynamo = runner.filter((g) => g.actions.some((a) => a.startsWith('dynamodb:')));
    assert.deepEqual([...new Set(dynamo.flatMap((g) => g.actions))].sort(), [
      'dynamodb:GetItem',
      'dynamodb:PutItem',
      'dynamodb:UpdateItem',
    ]);
    // Jobs, the tenants' credit balances (settlement refunds) and the usage ledger.
    assert.deepEqual(
      [...new Set(dynamo.flatMap((g) => g.resources))].sort(),
      [`${id.jobsTable}.Arn`, `${id.tenantsTable}.Arn`, `${id.usageTable}.Arn`].sort(),
    );
    // PutItem only on the ledger.
    assert.deepEqual(
      allowed(runner, 'dynamodb:PutItem').flatMap((g) => g.resources),
      [`${id.usageTable}.Arn`],
    );
    for (const g of runner) assert.ok(!g.resources.includes('*'), `runner wildcard resource: ${g.actions}`);
    assert.deepEqual(allowed(runner, 's3:DeleteObject'), []);
  });

  test('the edge cannot receive from any queue, write outputs or touch the models bucket', () => {
    for (const action of ['sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:ChangeMessageVisibility']) {
      assert.deepEqual(allowed(edge, action), [], action);
    }
    assert.deepEqual(
      allowed(edge, 'sqs:SendMessage')
        .flatMap((g) => g.resources)
        .sort(),
      [`${id.eventsQueue}.Arn`, `${id.jobsQueue}.Arn`].sort(),
    );
    assert.deepEqual(
      allowed(edge, 's3:PutObject').flatMap((g) => g.resources),
      [`${id.media}.Arn/inputs/*`],
    );
    // GetObject only on outputs/, which presigning requires (see edge.ts).
    assert.deepEqual(
      allowed(edge, 's3:GetObject').flatMap((g) => g.resources),
      [`${id.media}.Arn/outputs/*`],
    );
    assert.ok(!edge.some((g) => g.resources.some((r) => r.startsWith(id.models))));
  });

  test('the notifier consumes and re-delays on the events queue, reads jobs and tenants, updates jobs only', () => {
    const notifier = grantsOf(s, id.notifierRole);
    for (const action of ['sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:SendMessage']) {
      assert.deepEqual(
        allowed(notifier, action).flatMap((g) => g.resources),
        [`${id.eventsQueue}.Arn`],
        action,
      );
    }
    const dynamo = notifier.filter((g) => g.actions.some((a) => a.startsWith('dynamodb:')));
    assert.deepEqual(dynamo.flatMap((g) => g.actions).sort(), ['dynamodb:GetItem', 'dynamodb:UpdateItem']);
    assert.deepEqual(
      allowed(notifier, 'dynamodb:GetItem')
        .flatMap((g) => g.resources)
        .sort(),
      [`${id.jobsTable}.Arn`, `${id.tenantsTable}.Arn`].sort(),
    );
    assert.deepEqual(
      allowed(notifier, 'dynamodb:UpdateItem').flatMap((g) => g.resources),
      [`${id.jobsTable}.Arn`],
    );
    assert.ok(!notifier.some((g) => g.actions.some((a) => a.startsWith('s3:'))), 'no S3 access');
    for (const g of notifier)
      assert.ok(!g.resources.includes('*'), `notifier wildcard resource: ${g.actions}`);
  });

  test('the notifier is a Node 22 Lambda on the events queue with partial batch failures', () => {
    const fn = s.json.Resources[id.notifierFn]!.Properties!;
    assert.equal(fn['Runtime'], 'nodejs22.x');
    const env = (fn['Environment'] as { Variables: Record<string, unknown> }).Variables;
    assert.equal(render(env[ENV.EVENTS_QUEUE_URL]), id.eventsQueue);
    assert.equal(render(env[ENV.TENANTS_TABLE]), id.tenantsTable);
    s.template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      EventSourceArn: { 'Fn::GetAtt': [id.eventsQueue, 'Arn'] },
      FunctionName: { Ref: id.notifierFn },
      FunctionResponseTypes: ['ReportBatchItemFailures'],
    });
    // The runners and the edge are told where to send events.
    const task = Object.values(s.json.Resources).find((r) => r.Type === 'AWS::ECS::TaskDefinition')!;
    const container = (
      task.Properties!['ContainerDefinitions'] as { Environment: { Name: string; Value: unknown }[] }[]
    )[0]!;
    const events = container.Environment.find((e) => e.Name === ENV.EVENTS_QUEUE_URL);
    assert.equal(render(events?.Value), id.eventsQueue);
  });

  test('GPU instances hold only the ECS agent permissions', () => {
    const services = new Set(instance.flatMap((g) => g.actions.map((a) => a.split(':')[0])));
    assert.deepEqual([...services].sort(), ['ecr', 'ecs', 'logs']);
  });
});

describe('reconciler', () => {
  const s = dev;
  const id = idsOf(s);
  const role = logicalIdOf(s, 'AWS::IAM::Role', 'ReconcilerFunctionServiceRole');
  const fnId = logicalIdOf(s, 'AWS::Lambda::Function', 'ReconcilerFunction');
  const grants = grantsOf(s, role);

  test('a Node 22 Lambda invoked every minute by an EventBridge schedule', () => {
    const fn = s.json.Resources[fnId]!.Properties!;
    assert.equal(fn['Runtime'], 'nodejs22.x');
    const env = (fn['Environment'] as { Variables: Record<string, unknown> }).Variables;
    assert.equal(render(env[ENV.JOBS_TABLE]), id.jobsTable);
    assert.equal(render(env[ENV.TENANTS_TABLE]), id.tenantsTable);
    assert.equal(render(env[ENV.USAGE_TABLE]), id.usageTable);
    assert.equal(render(env[ENV.EVENTS_QUEUE_URL]), id.eventsQueue);
    assert.ok(render(env[ENV.JOB_QUEUES]).includes(id.jobsQueue));
    assert.match(render(env[ENV.SIGNING_KEYS]), /resolve:secretsmanager/, 'a dynamic reference, no secret');
    assert.equal(env[RECONCILER_ENV.STALE_AFTER_MS], String(15 * 60_000));
    s.template.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'rate(1 minute)',
      State: 'ENABLED',
      Targets: [Match.objectLike({ Arn: { 'Fn::GetAtt': [fnId, 'Arn'] } })],
    });
    s.template.hasResourceProperties('AWS::Lambda::Permission', {
      FunctionName: { 'Fn::GetAtt': [fnId, 'Arn'] },
      Principal: 'events.amazonaws.com',
    });
  });

  test('the jobs table has the sparse openByModel index the reconciler queries', () => {
    const j = TABLES.jobs;
    s.template.hasResourceProperties('AWS::DynamoDB::GlobalTable', {
      GlobalSecondaryIndexes: Match.arrayWith([
        {
          IndexName: j.openIndex,
          KeySchema: [
            { AttributeName: j.openKey, KeyType: 'HASH' },
            { AttributeName: j.openSort, KeyType: 'RANGE' },
          ],
          Projection: { ProjectionType: 'INCLUDE', NonKeyAttributes: [...j.openProjection] },
        },
      ]),
    });
  });

  test('least privilege: its index, jobs, tenants, the ledger, sends and queue depth; no S3, no receive', () => {
    const resourcesOf = (action: string) =>
      allowed(grants, action)
        .flatMap((g) => g.resources)
        .sort();
    assert.deepEqual(resourcesOf('dynamodb:Query'), [`${id.jobsTable}.Arn/index/${TABLES.jobs.openIndex}`]);
    assert.deepEqual(
      resourcesOf('dynamodb:GetItem'),
      [`${id.jobsTable}.Arn`, `${id.tenantsTable}.Arn`].sort(),
    );
    assert.deepEqual(
      resourcesOf('dynamodb:UpdateItem'),
      [`${id.jobsTable}.Arn`, `${id.tenantsTable}.Arn`].sort(),
    );
    assert.deepEqual(resourcesOf('dynamodb:PutItem'), [`${id.jobsTable}.Arn`, `${id.usageTable}.Arn`].sort());
    assert.deepEqual(resourcesOf('dynamodb:Scan'), [`${id.tenantsTable}.Arn`]);
    assert.deepEqual(resourcesOf('sqs:SendMessage'), [`${id.eventsQueue}.Arn`, `${id.jobsQueue}.Arn`].sort());
    assert.deepEqual(resourcesOf('sqs:GetQueueAttributes'), [`${id.jobsQueue}.Arn`]);
    for (const action of [
      'sqs:ReceiveMessage',
      'sqs:DeleteMessage',
      'dynamodb:DeleteItem',
      'dynamodb:BatchWriteItem',
    ]) {
      assert.deepEqual(resourcesOf(action), [], action);
    }
    assert.ok(!grants.some((g) => g.actions.some((a) => a.startsWith('s3:'))), 'no S3 access');
    for (const g of grants) assert.ok(!g.resources.includes('*'), `wildcard resource: ${g.actions}`);
  });
});

describe('config overrides', () => {
  test('two models: a fleet, queues and an edge route each', () => {
    const second = {
      ...PRESETS.dev.models[0]!,
      id: 'sd3-turbo',
      s3Prefix: 'sd3-turbo',
      default: false,
      maxTasks: 3,
    };
    const s = synth({ preset: 'dev', config: JSON.stringify({ models: [PRESETS.dev.models[0], second] }) });
    s.template.resourceCountIs('AWS::AutoScaling::AutoScalingGroup', 2);
    s.template.resourceCountIs('AWS::ECS::Service', 2);
    s.template.resourceCountIs('AWS::SQS::Queue', 6);
    s.template.hasResourceProperties('AWS::ApplicationAutoScaling::ScalableTarget', { MaxCapacity: 3 });
    const fnId = logicalIdOf(s, 'AWS::Lambda::Function', 'EdgeFunction');
    const env = (s.json.Resources[fnId]!.Properties!['Environment'] as { Variables: Record<string, unknown> })
      .Variables;
    assert.match(render(env[ENV.JOB_QUEUES]), /"sd3-medium":.*"sd3-turbo":/);
  });

  test('a missing edge entry fails the synth with the config key named', () => {
    assert.throws(
      () =>
        buildApp({
          outdir: join(outRoot, 'missing'),
          context: { preset: 'dev', config: { edge: { entry: 'edge/src/nope.ts' } } },
        }),
      /edge entry edge\/src\/nope\.ts does not exist \(config edge\.entry/,
    );
  });
});
