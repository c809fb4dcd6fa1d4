/**
 * Alarms and a dashboard: DLQ depth, age of the oldest queued job, edge 5xx rate, runner errors
 * (a metric filter on the runner's JSON log lines), failed jobs and failing reconciler runs; all
 * alarms go to one SNS topic.
 */
import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cwActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import { Construct } from 'constructs';
import type { DeployConfig } from './config.js';
import type { Edge } from './edge.js';
import type { GpuService } from './gpu-service.js';
import type { Queues } from './queues.js';
import type { Reconciler } from './reconciler.js';

export interface MonitoringProps {
  config: DeployConfig;
  edge: Edge;
  gpu: GpuService;
  queues: Queues;
  /** The crash-recovery reconciler: a run that leaves errors fails its invocation. */
  reconciler?: Reconciler;
}

export class Monitoring extends Construct {
  readonly topic: sns.Topic;
  readonly dashboard: cloudwatch.Dashboard;
  readonly alarms: cloudwatch.Alarm[] = [];

  constructor(scope: Construct, id: string, props: MonitoringProps) {
    super(scope, id);
    const { config, edge, gpu, queues } = props;
    const fiveMin = Duration.minutes(5);
    const namespace = `SD3/${config.stackName}`;

    this.topic = new sns.Topic(this, 'Alarms', {
      displayName: `${config.stackName} alarms`,
      enforceSSL: true,
    });
    if (config.alarms.email)
      this.topic.addSubscription(new subscriptions.EmailSubscription(config.alarms.email));
    const notify = new cwActions.SnsAction(this.topic);
    const alarm = (idPart: string, props: cloudwatch.AlarmProps) => {
      const a = new cloudwatch.Alarm(this, idPart, {
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        ...props,
      });
      a.addAlarmAction(notify);
      a.addOkAction(notify);
      this.alarms.push(a);
      return a;
    };

    const dashboard = new cloudwatch.Dashboard(this, 'Dashboard', {
      dashboardName: `${config.stackName}-sd3`,
      defaultInterval: Duration.hours(3),
    });
    this.dashboard = dashboard;

    // Edge: 5xx share of function URL requests.
    const requests = edge.fn.metric('UrlRequestCount', { statistic: 'Sum', period: fiveMin });
    const errors5xx = edge.fn.metric('Url5xxCount', { statistic: 'Sum', period: fiveMin });
    const rate5xx = new cloudwatch.MathExpression({
      expression: 'IF(FILL(requests, 0) > 0, 100 * FILL(errors, 0) / requests, 0)',
      usingMetrics: { requests, errors: errors5xx },
      label: 'edge 5xx %',
      period: fiveMin,
    });
    alarm('Edge5xxRate', {
      alarmDescription: `Edge: more than ${config.alarms.edge5xxPercent}% of requests answered 5xx over 5 minutes`,
      metric: rate5xx,
      threshold: config.alarms.edge5xxPercent,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
    });
    dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'Edge requests',
        left: [requests, errors5xx],
        right: [rate5xx],
        width: 8,
      }),
      new cloudwatch.GraphWidget({
        title: 'Edge latency (ms)',
        left: [
          edge.fn.metric('UrlRequestLatency', { statistic: 'p50', period: fiveMin }),
          edge.fn.metric('UrlRequestLatency', { statistic: 'p99', period: fiveMin }),
        ],
        width: 8,
      }),
      new cloudwatch.GraphWidget({
        title: 'Edge invocations',
        left: [edge.fn.metricInvocations({ period: fiveMin }), edge.fn.metricErrors({ period: fiveMin })],
        right: [edge.fn.metricThrottles({ period: fiveMin })],
        width: 8,
      }),
    );

    for (const fleet of gpu.fleets) {
      const m = fleet.model.id;
      alarm(`${m}-DlqDepth`, {
        alarmDescription: `${m}: jobs reached the dead-letter queue (every receive failed); inspect and redrive`,
        metric: fleet.dlq.metricApproximateNumberOfMessagesVisible({
          period: Duration.minutes(1),
          statistic: 'Maximum',
        }),
        threshold: 1,
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      });
      const oldest = fleet.queue.metricApproximateAgeOfOldestMessage({
        period: Duration.minutes(1),
        statistic: 'Maximum',
      });
      alarm(`${m}-OldestJobAge`, {
        alarmDescription: `${m}: a job has waited more than ${config.alarms.oldestMessageAgeSeconds} s in the queue`,
        metric: oldest,
        threshold: config.alarms.oldestMessageAgeSeconds,
        evaluationPeriods: 3,
        datapointsToAlarm: 2,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      });

      // The runner logs JSON lines: {"level":"error",…} for failures of the runner itself, and
      // "job failed…" warnings for jobs that failed (retried or final).
      const runnerErrors = new logs.MetricFilter(this, `${m}-RunnerErrorsFilter`, {
        logGroup: fleet.logGroup,
        filterPattern: logs.FilterPattern.stringValue('$.level', '=', 'error'),
        metricNamespace: namespace,
        metricName: `RunnerErrors-${m}`,
        metricValue: '1',
        defaultValue: 0,
      }).metric({ statistic: 'Sum', period: fiveMin });
      const jobsFailed = new logs.MetricFilter(this, `${m}-JobsFailedFilter`, {
        logGroup: fleet.logGroup,
        filterPattern: logs.FilterPattern.all(
          logs.FilterPattern.stringValue('$.level', '=', 'warn'),
          logs.FilterPattern.stringValue('$.msg', '=', 'job failed*'),
        ),
        metricNamespace: namespace,
        metricName: `JobsFailed-${m}`,
        metricValue: '1',
        defaultValue: 0,
      }).metric({ statistic: 'Sum', period: fiveMin });
      alarm(`${m}-RunnerErrors`, {
        alarmDescription: `${m}: the runner logged at least ${config.alarms.runnerErrorsPer5Min} errors in 5 minutes`,
        metric: runnerErrors,
        threshold: config.alarms.runnerErrorsPer5Min,
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      });
      alarm(`${m}-JobsFailing`, {
        alarmDescription: `${m}: at least ${config.alarms.runnerErrorsPer5Min} job attempts failed in 5 minutes`,
        metric: jobsFailed,
        threshold: config.alarms.runnerErrorsPer5Min,
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      });

      dashboard.addWidgets(
        new cloudwatch.GraphWidget({
          title: `${m}: queue`,
          left: [
            fleet.queue.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(1) }),
            fleet.queue.metricApproximateNumberOfMessagesNotVisible({ period: Duration.minutes(1) }),
            fleet.dlq.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(1), label: 'DLQ' }),
          ],
          right: [oldest],
          width: 8,
        }),
        new cloudwatch.GraphWidget({
          title: `${m}: tasks and backlog per task`,
          left: [fleet.runningTasks, fleet.desiredTasks],
          right: [fleet.backlogPerTask],
          rightAnnotations: [{ value: fleet.model.targetBacklogPerTask, label: 'target' }],
          width: 8,
        }),
        new cloudwatch.GraphWidget({
          title: `${m}: runner errors and failed jobs`,
          left: [runnerErrors, jobsFailed],
          width: 8,
        }),
      );
    }
    const eventsDlq = queues.eventsDlq.metricApproximateNumberOfMessagesVisible({
      period: Duration.minutes(1),
      statistic: 'Maximum',
    });
    if (props.reconciler) {
      // Runs every minute: three failed invocations (retries included) in 5 minutes is not a blip.
      alarm('ReconcilerFailing', {
        alarmDescription:
          'Reconciler: runs are failing (lost messages, refunds or webhooks are not being repaired); see its log line "reconciler run"',
        metric: props.reconciler.fn.metricErrors({ statistic: 'Sum', period: fiveMin }),
        threshold: 3,
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      });
    }

    alarm('EventsDlqDepth', {
      alarmDescription: 'Job events reached the events dead-letter queue',
      metric: eventsDlq,
      threshold: 1,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
    });
    dashboard.addWidgets(
      new cloudwatch.AlarmStatusWidget({ title: 'Alarms', alarms: this.alarms, width: 24 }),
    );
  }
}
