/**
 * Every cdk-nag AwsSolutions finding this app acknowledges, each on the one construct it concerns
 * and with the reason it is acceptable. Anything not listed here fails the synth.
 */
import { type CfnElement, type Stack, Validations } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';
import type { Sd3Stack } from './stack.js';

function ack(scope: IConstruct, rule: string, reason: string): void {
  Validations.of(scope).acknowledge({ id: `AwsSolutions::AwsSolutions-${rule}`, reason });
}

const logicalId = (stack: Stack, c: IConstruct) => stack.getLogicalId(c.node.defaultChild as CfnElement);

export function applyNagSuppressions(stack: Sd3Stack): void {
  const media = logicalId(stack, stack.storage.mediaBucket);
  const models = logicalId(stack, stack.storage.modelsBucket);
  const jobs = logicalId(stack, stack.data.jobs);

  // Edge.
  const edgeRole = stack.edge.fn.role!;
  ack(
    edgeRole,
    'IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
    'The AWS managed basic execution policy only allows writing the function’s own CloudWatch logs.',
  );
  const edgePolicy = edgeRole.node.findChild('DefaultPolicy');
  ack(
    edgePolicy,
    `IAM5[Resource::<${jobs}.Arn>/index/*]`,
    'Listing a tenant’s jobs and counting queued jobs query the jobs table’s two indexes (byTenant, queuedByModel).',
  );
  ack(
    edgePolicy,
    `IAM5[Resource::<${media}.Arn>/inputs/*]`,
    'The edge stores input images under inputs/{tenant}/{job}/; job ids are created per request, so the key is only known at run time.',
  );
  ack(
    edgePolicy,
    `IAM5[Resource::<${media}.Arn>/outputs/*]`,
    'GetObject on outputs/ only: presigned output URLs carry the signer’s permissions, so the edge needs it to hand out links (and for b64_json responses).',
  );
  ack(
    stack.edge.fn,
    'L1',
    'The project targets Node 22 on both sides (edge bundle target node22, runner image Node 22); Node 22 is a supported Lambda runtime.',
  );
  ack(
    stack.edge.distribution,
    'CFR1',
    'A public API for any country; operators who need geo restrictions add them to the distribution.',
  );
  ack(
    stack.edge.distribution,
    'CFR2',
    'Abuse is handled by API keys, per-key rate limits and credit caps in the app; WAF costs a fixed monthly fee and is left to operators who want it.',
  );
  ack(
    stack.edge.distribution,
    'CFR4',
    'The distribution uses the default *.cloudfront.net certificate, whose security policy cannot be changed; a custom domain with TLSv1.2_2021 is the operator’s choice.',
  );

  // Notifier.
  ack(
    stack.notifier.fn.role!,
    'IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
    'The AWS managed basic execution policy only allows writing the function’s own CloudWatch logs.',
  );
  ack(
    stack.notifier.fn,
    'L1',
    'The project targets Node 22 on both sides (edge bundle target node22, runner image Node 22); Node 22 is a supported Lambda runtime.',
  );

  // Reconciler.
  ack(
    stack.reconciler.fn.role!,
    'IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
    'The AWS managed basic execution policy only allows writing the function’s own CloudWatch logs.',
  );
  ack(
    stack.reconciler.fn,
    'L1',
    'The project targets Node 22 on both sides (edge bundle target node22, runner image Node 22); Node 22 is a supported Lambda runtime.',
  );

  ack(
    stack.signingSecret,
    'SMG4',
    'Envelope keys rotate by adding a second key id and switching SD3_SIGNING_KEY_ID (both sides accept every listed key); an automatic single-value rotation would invalidate queued jobs.',
  );

  // GPU fleet.
  for (const fleet of stack.gpu.fleets) {
    const m = fleet.model.id;
    const instancePolicy = fleet.asg.role.node.findChild('DefaultPolicy');
    ack(
      instancePolicy,
      'IAM5[Action::ecs:Submit*]',
      'The ECS agent policy written by aws-ecs (scoped to this cluster): the agent submits task and container state changes.',
    );
    ack(
      instancePolicy,
      'IAM5[Resource::*]',
      'ECS agent actions that take no resource (ecs:DiscoverPollEndpoint, ecr:GetAuthorizationToken) or are conditioned on this cluster (ecs:Poll, ecs:StartTelemetrySession).',
    );
    const execution = fleet.taskDefinition.executionRole!;
    ack(
      execution.node.findChild('DefaultPolicy'),
      'IAM5[Resource::*]',
      'ecr:GetAuthorizationToken takes no resource; image pulls, log writes and the secret read are scoped to their resources.',
    );
    const taskPolicy = fleet.taskDefinition.taskRole.node.findChild('DefaultPolicy');
    ack(
      taskPolicy,
      `IAM5[Resource::<${media}.Arn>/inputs/*]`,
      'The runner reads the input image of the job it holds; job keys are only known at run time. Read only.',
    );
    ack(
      taskPolicy,
      `IAM5[Resource::<${media}.Arn>/outputs/*]`,
      'The runner writes outputs/{tenant}/{job}/{i}.{ext} for the job it holds. Write only.',
    );
    ack(
      taskPolicy,
      `IAM5[Resource::<${models}.Arn>/${fleet.model.s3Prefix}/*]`,
      `The runner syncs the files of its own model folder (${m}) at start. Read only.`,
    );
    ack(
      fleet.taskDefinition,
      'ECS2',
      'The plain environment holds resource names and tunables only; the signing keys come from Secrets Manager through `secrets`.',
    );
    ack(
      fleet.asg,
      'AS3',
      'Scaling is driven by ECS (capacity provider); instance launches and failures surface as ECS service events and the queue-age alarm.',
    );
    ack(
      fleet.asg,
      'EC26',
      'The rule cannot read a launch template inside a mixed-instances policy; the only volume is the root gp3 volume, encrypted: true in the launch template (asserted in the tests).',
    );
  }
}
