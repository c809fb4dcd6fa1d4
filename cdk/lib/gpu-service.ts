/**
 * The GPU fleet: a VPC, an ECS cluster, and per model an auto-scaling group of single-GPU instances
 * (mixed spot/on-demand, ECS GPU AMI) behind a capacity provider with managed scaling and draining,
 * the runner service, and its task scaling:
 *
 * - target tracking on backlog per task, (visible + in-flight) / max(running, 1), through the L1
 *   policy because the L2 refuses metric math for target tracking;
 * - target tracking cannot leave zero (it multiplies the current count), so a wake alarm
 *   (backlog > 0 while the desired count is 0) adds the first task through a step policy.
 */
import { Duration, IgnoreMode, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as appscaling from 'aws-cdk-lib/aws-applicationautoscaling';
import * as autoscaling from 'aws-cdk-lib/aws-autoscaling';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cwActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { Platform } from 'aws-cdk-lib/aws-ecr-assets';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { type DeployConfig, graceSeconds, type ModelConfig, stopTimeoutSeconds } from './config.js';
import type { Data } from './data.js';
import { ENV, MAX_RECEIVES, RUNNER_ENV } from './names.js';
import { REPO_ROOT } from './paths.js';
import type { Queues } from './queues.js';
import {
  CONTAINER_MODEL_ROOT,
  HOST_MODEL_ROOT,
  RUNNER_DOCKERFILE,
  RUNNER_HEALTH_PORT,
  RUNNER_UID,
  runnerIgnorePatterns,
} from './runner-image.js';
import { MEDIA_PREFIXES, type Storage } from './storage.js';

export interface GpuServiceProps {
  config: DeployConfig;
  storage: Storage;
  data: Data;
  queues: Queues;
  signingSecret: secretsmanager.ISecret;
}

export interface ModelFleet {
  model: ModelConfig;
  queue: sqs.Queue;
  dlq: sqs.Queue;
  asg: autoscaling.AutoScalingGroup;
  capacityProvider: ecs.AsgCapacityProvider;
  taskDefinition: ecs.Ec2TaskDefinition;
  service: ecs.Ec2Service;
  logGroup: logs.LogGroup;
  /** Expression id of the tracked metric: (visible + in-flight) / max(running, 1). */
  backlogPerTask: cloudwatch.MathExpression;
  runningTasks: cloudwatch.Metric;
  desiredTasks: cloudwatch.Metric;
  wakeAlarm: cloudwatch.Alarm;
}

/** Container Insights service metrics (the cluster enables them). */
function insightsMetric(name: string, cluster: ecs.ICluster, service: ecs.Ec2Service, period: Duration) {
  return new cloudwatch.Metric({
    namespace: 'ECS/ContainerInsights',
    metricName: name,
    dimensionsMap: { ClusterName: cluster.clusterName, ServiceName: service.serviceName },
    statistic: 'Average',
    period,
  });
}

/**
 * Instance user data: the model cache on the instance-store NVMe when the type has one (g5/g6 do),
 * else on the root volume, owned by the runner's uid; ECS agent settings for spot draining and for
 * reusing a cached image on a warm instance.
 */
function instanceSetup(): string[] {
  return [
    'set -eu',
    `mkdir -p ${HOST_MODEL_ROOT}`,
    'dev=$(ls /dev/disk/by-id/nvme-Amazon_EC2_NVMe_Instance_Storage_* 2>/dev/null | head -n 1 || true)',
    `if [ -n "$dev" ] && ! mountpoint -q ${HOST_MODEL_ROOT}; then mkfs.xfs -f "$dev" && mount -o noatime "$dev" ${HOST_MODEL_ROOT}; fi`,
    `chown ${RUNNER_UID}:${RUNNER_UID} ${HOST_MODEL_ROOT}`,
    'echo ECS_ENABLE_SPOT_INSTANCE_DRAINING=true >> /etc/ecs/ecs.config',
    'echo ECS_IMAGE_PULL_BEHAVIOR=prefer-cached >> /etc/ecs/ecs.config',
    'echo ECS_ENABLE_GPU_SUPPORT=true >> /etc/ecs/ecs.config',
  ];
}

export class GpuService extends Construct {
  readonly vpc: ec2.Vpc;
  readonly cluster: ecs.Cluster;
  readonly fleets: ModelFleet[] = [];

  constructor(scope: Construct, id: string, props: GpuServiceProps) {
    super(scope, id);
    const { config, storage } = props;
    const privateSubnets = config.network.natGateways > 0;

    this.vpc = new ec2.Vpc(this, 'Vpc', {
      maxAzs: config.network.maxAzs,
      natGateways: config.network.natGateways,
      subnetConfiguration: [
        { name: 'public', subnetType: ec2.SubnetType.PUBLIC, cidrMask: 24 },
        ...(privateSubnets
          ? [{ name: 'private', subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS, cidrMask: 20 }]
          : []),
      ],
      // Free gateway endpoints: model downloads and job updates never cross a NAT gateway.
      gatewayEndpoints: {
        S3: { service: ec2.GatewayVpcEndpointAwsService.S3 },
        DynamoDB: { service: ec2.GatewayVpcEndpointAwsService.DYNAMODB },
      },
      flowLogs: {
        rejected: {
          destination: ec2.FlowLogDestination.toS3(storage.accessLogsBucket, 'vpc-flow-logs/'),
          trafficType: ec2.FlowLogTrafficType.REJECT,
        },
      },
    });

    this.cluster = new ecs.Cluster(this, 'Cluster', {
      vpc: this.vpc,
      containerInsightsV2: ecs.ContainerInsights.ENABLED,
    });

    for (const model of config.models) this.fleets.push(this.addFleet(model, props, privateSubnets));
  }

  private addFleet(model: ModelConfig, props: GpuServiceProps, privateSubnets: boolean): ModelFleet {
    const { config, storage, data, queues } = props;
    const scope = new Construct(this, model.id);
    const { jobs: queue, dlq } = queues.model(model.id);

    const securityGroup = new ec2.SecurityGroup(scope, 'InstanceSg', {
      vpc: this.vpc,
      description: `${model.id} GPU instances: no inbound traffic`,
      allowAllOutbound: true,
    });
    const instanceRole = new iam.Role(scope, 'InstanceRole', {
      assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com'),
      description: 'ECS container instance (agent only; tasks have their own roles)',
    });
    const userData = ec2.UserData.forLinux();
    userData.addCommands(...instanceSetup());

    const launchTemplate = new ec2.LaunchTemplate(scope, 'LaunchTemplate', {
      machineImage: ecs.EcsOptimizedImage.amazonLinux2023(ecs.AmiHardwareType.GPU),
      role: instanceRole,
      userData,
      securityGroup,
      requireImdsv2: true,
      // Public subnets (no NAT): instances need a public address to reach AWS APIs and ECR.
      associatePublicIpAddress: !privateSubnets,
      blockDevices: [
        {
          deviceName: '/dev/xvda',
          volume: ec2.BlockDeviceVolume.ebs(config.capacity.rootVolumeGiB, {
            volumeType: ec2.EbsDeviceVolumeType.GP3,
            encrypted: true,
            deleteOnTermination: true,
          }),
        },
      ],
    });

    const asg = new autoscaling.AutoScalingGroup(scope, 'Asg', {
      vpc: this.vpc,
      vpcSubnets: { subnetType: privateSubnets ? ec2.SubnetType.PRIVATE_WITH_EGRESS : ec2.SubnetType.PUBLIC },
      minCapacity: 0,
      maxCapacity: model.maxTasks,
      capacityRebalance: config.capacity.onDemandPercentageAboveBase < 100,
      mixedInstancesPolicy: {
        launchTemplate,
        launchTemplateOverrides: model.instanceTypes.map((t) => ({ instanceType: new ec2.InstanceType(t) })),
        instancesDistribution: {
          onDemandBaseCapacity: config.capacity.onDemandBaseCapacity,
          onDemandPercentageAboveBaseCapacity: config.capacity.onDemandPercentageAboveBase,
          onDemandAllocationStrategy: autoscaling.OnDemandAllocationStrategy.PRIORITIZED,
          spotAllocationStrategy: autoscaling.SpotAllocationStrategy.PRICE_CAPACITY_OPTIMIZED,
        },
      },
    });

    const capacityProvider = new ecs.AsgCapacityProvider(scope, 'Capacity', {
      autoScalingGroup: asg,
      enableManagedScaling: true,
      enableManagedTerminationProtection: true,
      enableManagedDraining: true,
      targetCapacityPercent: 100,
      instanceWarmupPeriod: config.capacity.instanceBootSeconds,
    });
    // With managed draining, aws-ecs leaves out its legacy drain-hook Lambda.
    this.cluster.addAsgCapacityProvider(capacityProvider);

    const logGroup = new logs.LogGroup(scope, 'Logs', {
      retention: config.retention.logDays satisfies number as logs.RetentionDays,
      removalPolicy: RemovalPolicy.DESTROY,
    });

    const taskDefinition = new ecs.Ec2TaskDefinition(scope, 'Task', {
      networkMode: ecs.NetworkMode.BRIDGE,
      volumes: [{ name: 'model-cache', host: { sourcePath: HOST_MODEL_ROOT } }],
    });
    const modelDir = `${CONTAINER_MODEL_ROOT}/${model.id}`;
    const modelUri = `s3://${storage.modelsBucket.bucketName}/${model.s3Prefix}`;
    const container = taskDefinition.addContainer('runner', {
      image: ecs.ContainerImage.fromAsset(REPO_ROOT, {
        file: RUNNER_DOCKERFILE,
        exclude: runnerIgnorePatterns(),
        ignoreMode: IgnoreMode.DOCKER,
        platform: Platform.LINUX_AMD64,
      }),
      gpuCount: 1,
      memoryReservationMiB: model.memoryReservationMiB,
      stopTimeout: Duration.seconds(stopTimeoutSeconds(model)),
      logging: ecs.LogDrivers.awsLogs({ streamPrefix: 'runner', logGroup }),
      // Sync the model into the instance-store cache (resumable, verified against its manifest;
      // a warm cache only re-checks sizes), then hand the process over to the runner.
      command: [
        'sh',
        '-c',
        `node gpu-runner/bin/sd3.js models pull "${modelUri}" "$${ENV.MODEL_DIR}" && exec node gpu-runner/bin/sd3-runner.js`,
      ],
      environment: {
        AWS_REGION: Stack.of(this).region,
        [ENV.JOB_QUEUE_URL]: queue.queueUrl,
        [ENV.DLQ_URL]: dlq.queueUrl,
        [ENV.EVENTS_QUEUE_URL]: queues.events.queueUrl,
        [ENV.JOBS_TABLE]: data.jobs.tableName,
        [ENV.TENANTS_TABLE]: data.tenants.tableName,
        [ENV.USAGE_TABLE]: data.usage.tableName,
        [ENV.MEDIA_BUCKET]: storage.mediaBucket.bucketName,
        [ENV.MODEL_ID]: model.id,
        [ENV.MODEL_DIR]: modelDir,
        [ENV.PROVIDER]: model.provider,
        [RUNNER_ENV.T5]: String(model.t5),
        [RUNNER_ENV.VISIBILITY_TIMEOUT_SECONDS]: String(config.queue.visibilityTimeoutSeconds),
        [RUNNER_ENV.HEARTBEAT_INTERVAL_SECONDS]: String(config.queue.heartbeatSeconds),
        [RUNNER_ENV.GRACE_SECONDS]: String(graceSeconds(model)),
        [RUNNER_ENV.HEALTH_PORT]: String(RUNNER_HEALTH_PORT),
        [RUNNER_ENV.MAX_RECEIVES]: String(MAX_RECEIVES),
        // `models pull` leaves the verified manifest in the folder; the runner re-hashes every file
        // against it at start, so a byte flipped on the instance store is caught, not served.
        [RUNNER_ENV.REQUIRE_MANIFEST]: 'true',
      },
      secrets: { [ENV.SIGNING_KEYS]: ecs.Secret.fromSecretsManager(props.signingSecret) },
      healthCheck: {
        command: [
          'CMD',
          'node',
          '-e',
          `fetch('http://127.0.0.1:${RUNNER_HEALTH_PORT}/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))`,
        ],
        interval: Duration.seconds(30),
        timeout: Duration.seconds(5),
        retries: 3,
        // ECS's maximum; covers a cold model sync into an empty cache.
        startPeriod: Duration.seconds(300),
      },
    });
    container.addMountPoints({
      sourceVolume: 'model-cache',
      containerPath: CONTAINER_MODEL_ROOT,
      readOnly: false,
    });

    this.grantRunner(taskDefinition.taskRole, { queue, dlq, events: queues.events, data, storage, model });

    const service = new ecs.Ec2Service(scope, 'Service', {
      cluster: this.cluster,
      taskDefinition,
      desiredCount: model.minTasks,
      // One GPU per instance: a rolling update starts the new task on a new instance first when a
      // task must stay up; with scale to zero there is nothing to keep.
      minHealthyPercent: model.minTasks > 0 ? 100 : 0,
      maxHealthyPercent: 200,
      circuitBreaker: { rollback: true },
      capacityProviderStrategies: [{ capacityProvider: capacityProvider.capacityProviderName, weight: 1 }],
      enableECSManagedTags: true,
      propagateTags: ecs.PropagatedTagSource.SERVICE,
    });

    const scalable = service.autoScaleTaskCount({ minCapacity: model.minTasks, maxCapacity: model.maxTasks });
    const target = scalable.node.findChild('Target') as appscaling.ScalableTarget;
    const minute = Duration.minutes(1);
    const visible = queue.metricApproximateNumberOfMessagesVisible({ period: minute, statistic: 'Average' });
    const inflight = queue.metricApproximateNumberOfMessagesNotVisible({
      period: minute,
      statistic: 'Average',
    });
    const runningTasks = insightsMetric('RunningTaskCount', this.cluster, service, minute);
    const desiredTasks = insightsMetric('DesiredTaskCount', this.cluster, service, minute);
    const backlogExpression = '(visible + inflight) / IF(running > 0, running, 1)';
    const backlogPerTask = new cloudwatch.MathExpression({
      expression: backlogExpression,
      usingMetrics: { visible, inflight, running: runningTasks },
      label: `${model.id} backlog per task`,
      period: minute,
    });

    const stat = (metric: cloudwatch.Metric) => ({
      metric: {
        namespace: metric.namespace,
        metricName: metric.metricName,
        dimensions: Object.entries(metric.dimensions ?? {}).map(([name, value]) => ({
          name,
          value: String(value),
        })),
      },
      stat: 'Average',
    });
    new appscaling.CfnScalingPolicy(scope, 'BacklogPerTaskTracking', {
      policyName: `${model.id}-backlog-per-task`,
      policyType: 'TargetTrackingScaling',
      scalingTargetId: target.scalableTargetId,
      targetTrackingScalingPolicyConfiguration: {
        targetValue: model.targetBacklogPerTask,
        scaleOutCooldown: config.scaling.scaleOutCooldownSeconds,
        scaleInCooldown: config.scaling.scaleInCooldownSeconds,
        customizedMetricSpecification: {
          metrics: [
            { id: 'visible', metricStat: stat(visible), returnData: false },
            { id: 'inflight', metricStat: stat(inflight), returnData: false },
            { id: 'running', metricStat: stat(runningTasks), returnData: false },
            { id: 'backlog', expression: backlogExpression, label: 'backlog per task', returnData: true },
          ],
        },
      },
    });

    const wakePeriod = Duration.seconds(config.scaling.wakePeriodSeconds);
    const wakeAlarm = new cloudwatch.Alarm(scope, 'WakeAlarm', {
      alarmDescription: `${model.id}: jobs are waiting and no runner task is desired; add one`,
      metric: new cloudwatch.MathExpression({
        expression: 'IF(FILL(desired, 0) < 1 AND visible > 0, 1, 0)',
        usingMetrics: {
          visible: queue.metricApproximateNumberOfMessagesVisible({
            period: wakePeriod,
            statistic: 'Maximum',
          }),
          desired: insightsMetric('DesiredTaskCount', this.cluster, service, wakePeriod).with({
            statistic: 'Maximum',
          }),
        },
        period: wakePeriod,
        label: 'waiting with no task',
      }),
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: config.scaling.wakeEvaluationPeriods,
      datapointsToAlarm: config.scaling.wakeEvaluationPeriods,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    const wake = new appscaling.StepScalingAction(scope, 'WakeFromZero', {
      scalingTarget: target,
      adjustmentType: appscaling.AdjustmentType.CHANGE_IN_CAPACITY,
      metricAggregationType: appscaling.MetricAggregationType.MAXIMUM,
      cooldown: Duration.seconds(config.scaling.scaleOutCooldownSeconds),
    });
    wake.addAdjustment({ adjustment: 1, lowerBound: 0 });
    wakeAlarm.addAlarmAction(new cwActions.ApplicationScalingAction(wake));

    return {
      model,
      queue,
      dlq,
      asg,
      capacityProvider,
      taskDefinition,
      service,
      logGroup,
      backlogPerTask,
      runningTasks,
      desiredTasks,
      wakeAlarm,
    };
  }

  /**
   * Least privilege for the runner: its own queue and DLQ (receive, delete, extend visibility, read
   * the redrive policy), send job events to the events queue (webhooks), read and update its jobs,
   * read inputs and the model, write outputs.
   */
  private grantRunner(
    role: iam.IRole,
    r: {
      queue: sqs.Queue;
      dlq: sqs.Queue;
      events: sqs.Queue;
      data: Data;
      storage: Storage;
      model: ModelConfig;
    },
  ): void {
    const add = (sid: string, actions: string[], resources: string[]) =>
      role.addToPrincipalPolicy(new iam.PolicyStatement({ sid, actions, resources }));
    add(
      'ConsumeJobs',
      ['sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:ChangeMessageVisibility', 'sqs:GetQueueAttributes'],
      [r.queue.queueArn, r.dlq.queueArn],
    );
    add('SendEvents', ['sqs:SendMessage'], [r.events.queueArn]);
    add('UpdateJobs', ['dynamodb:GetItem', 'dynamodb:UpdateItem'], [r.data.jobs.tableArn]);
    // Settlement refunds go back to the tenant's credit balance.
    add('SettleCredits', ['dynamodb:GetItem', 'dynamodb:UpdateItem'], [r.data.tenants.tableArn]);
    // One usage-ledger item per settled job (a conditional put, never an overwrite).
    add('WriteUsage', ['dynamodb:PutItem'], [r.data.usage.tableArn]);
    add('ReadInputs', ['s3:GetObject'], [r.storage.mediaBucket.arnForObjects(`${MEDIA_PREFIXES.inputs}*`)]);
    add(
      'WriteOutputs',
      ['s3:PutObject'],
      [r.storage.mediaBucket.arnForObjects(`${MEDIA_PREFIXES.outputs}*`)],
    );
    add('ReadModel', ['s3:GetObject'], [r.storage.modelsBucket.arnForObjects(`${r.model.s3Prefix}/*`)]);
  }
}
