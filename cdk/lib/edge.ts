/**
 * The edge: the Hono app bundled with esbuild as a Node 22 ESM Lambda, a function URL in
 * RESPONSE_STREAM mode (SSE, `Prefer: wait`) and CloudFront in front of it.
 *
 * IAM boundary, honestly: the edge writes jobs and input images and sends to the jobs queues; it can
 * never receive from a queue or write outputs. It does hold s3:GetObject on outputs/*: a presigned
 * URL carries the signer's permissions, so presigning output links is impossible without it, and the
 * same right lets the edge read an output (the OpenAI-compatible b64_json response does). Nothing
 * else in the bucket is readable by it (not inputs/, not the models bucket).
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { Duration, Stack } from 'aws-cdk-lib';
import * as cloudfront from 'aws-cdk-lib/aws-cloudfront';
import * as origins from 'aws-cdk-lib/aws-cloudfront-origins';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { type DeployConfig, modelInfos } from './config.js';
import type { Data } from './data.js';
import { EDGE_ENV, ENV } from './names.js';
import { nodeLambda } from './node-lambda.js';
import { REPO_ROOT } from './paths.js';
import type { Queues } from './queues.js';
import { MEDIA_PREFIXES, type Storage } from './storage.js';

export interface EdgeProps {
  config: DeployConfig;
  data: Data;
  storage: Storage;
  queues: Queues;
  signingSecret: secretsmanager.ISecret;
  signingKeyId: string;
}

/**
 * sharp ships native code per platform, so it cannot be bundled: it is copied next to the bundle
 * with its dependencies and its linux-x64 (glibc) binaries, which the Lambda runtime loads.
 */
const SHARP_PLATFORM_PACKAGES = ['@img/sharp-linux-x64', '@img/sharp-libvips-linux-x64'];

/** Package folders to copy for `name`: itself, its dependencies, and the allowed optional ones. */
export function packageClosure(nodeModules: string, names: string[], optional: string[]): string[] {
  const out = new Set<string>();
  const visit = (name: string, required: boolean) => {
    if (out.has(name)) return;
    const pkgFile = join(nodeModules, name, 'package.json');
    if (!existsSync(pkgFile)) {
      if (!required) return;
      throw new Error(
        `${name} is not installed in ${relative(REPO_ROOT, nodeModules)}: the edge bundle needs it. ` +
          (name.startsWith('@img/')
            ? 'On a machine that is not linux-x64, run: npm install --os=linux --cpu=x64 --libc=glibc sharp'
            : 'Run npm ci.'),
      );
    }
    out.add(name);
    const pkg = JSON.parse(readFileSync(pkgFile, 'utf8')) as {
      dependencies?: Record<string, string>;
      optionalDependencies?: Record<string, string>;
    };
    for (const dep of Object.keys(pkg.dependencies ?? {})) visit(dep, true);
    for (const dep of Object.keys(pkg.optionalDependencies ?? {}))
      if (optional.includes(dep)) visit(dep, true);
  };
  for (const n of names) visit(n, true);
  return [...out].sort();
}

export class Edge extends Construct {
  readonly fn: nodejs.NodejsFunction;
  readonly functionUrl: lambda.FunctionUrl;
  readonly distribution: cloudfront.Distribution;

  constructor(scope: Construct, id: string, props: EdgeProps) {
    super(scope, id);
    const { config, data, storage, queues } = props;
    const nodeModules = join(REPO_ROOT, 'node_modules');
    const copied = packageClosure(nodeModules, ['sharp'], SHARP_PLATFORM_PACKAGES);

    const models = modelInfos(config);
    this.fn = nodeLambda(this, {
      config,
      entry: config.edge.entry,
      what: 'edge',
      hint: 'config edge.entry, relative to the repo root',
      // x86_64 because the sharp binaries copied below are the linux-x64 ones.
      architecture: lambda.Architecture.X86_64,
      memorySize: config.edge.memoryMiB,
      timeout: Duration.seconds(config.edge.timeoutSeconds),
      // The runtime provides the AWS SDK v3; sharp is copied with its binaries.
      externalModules: ['sharp'],
      commandHooks: {
        beforeBundling: () => [],
        beforeInstall: () => [],
        afterBundling: (_input: string, outputDir: string) =>
          copied.flatMap((name) => {
            const to = join(outputDir, 'node_modules', name);
            return [`mkdir -p "${dirname(to)}"`, `cp -R "${join(nodeModules, name)}" "${to}"`];
          }),
      },
      environment: {
        [ENV.JOBS_TABLE]: data.jobs.tableName,
        [ENV.KEYS_TABLE]: data.keys.tableName,
        [ENV.TENANTS_TABLE]: data.tenants.tableName,
        [ENV.IDEMPOTENCY_TABLE]: data.idempotency.tableName,
        [ENV.RATE_LIMITS_TABLE]: data.rateLimits.tableName,
        [ENV.USAGE_TABLE]: data.usage.tableName,
        [ENV.MEDIA_BUCKET]: storage.mediaBucket.bucketName,
        [ENV.JOB_QUEUES]: Stack.of(this).toJsonString(
          Object.fromEntries(config.models.map((m) => [m.id, queues.model(m.id).jobs.queueUrl])),
        ),
        [ENV.EVENTS_QUEUE_URL]: queues.events.queueUrl,
        // A dynamic reference: CloudFormation resolves it at deploy time; the template holds no secret.
        [ENV.SIGNING_KEYS]: props.signingSecret.secretValue.unsafeUnwrap(),
        [ENV.SIGNING_KEY_ID]: props.signingKeyId,
        [EDGE_ENV.MODELS]: JSON.stringify(models),
        [EDGE_ENV.DEFAULT_MODEL]: models.find((m) => m.default)!.id,
      },
    });

    for (const table of data.all) table.grantReadWriteData(this.fn);
    for (const m of config.models) queues.model(m.id).jobs.grantSendMessages(this.fn);
    // Queued / canceled-while-queued / enqueue-failed events and webhook resends.
    queues.events.grantSendMessages(this.fn);
    this.fn.addToRolePolicy(
      new iam.PolicyStatement({
        sid: 'PutInputs',
        actions: ['s3:PutObject'],
        resources: [storage.mediaBucket.arnForObjects(`${MEDIA_PREFIXES.inputs}*`)],
      }),
    );
    this.fn.addToRolePolicy(
      new iam.PolicyStatement({
        sid: 'PresignOutputs',
        actions: ['s3:GetObject'],
        resources: [storage.mediaBucket.arnForObjects(`${MEDIA_PREFIXES.outputs}*`)],
      }),
    );

    // No IAM auth on the URL: every route but /healthz, /docs and /openapi.json needs an API key
    // checked by the app, and CloudFront's origin access control cannot sign POST bodies for
    // ordinary clients. The URL is not published; CloudFront is the documented entry point.
    this.functionUrl = this.fn.addFunctionUrl({
      authType: lambda.FunctionUrlAuthType.NONE,
      invokeMode: lambda.InvokeMode.RESPONSE_STREAM,
    });

    this.distribution = new cloudfront.Distribution(this, 'Cdn', {
      comment: `${config.stackName} API`,
      priceClass: cloudfront.PriceClass.PRICE_CLASS_100,
      enableLogging: true,
      logBucket: storage.accessLogsBucket,
      logFilePrefix: 'cloudfront/',
      defaultBehavior: {
        origin: new origins.FunctionUrlOrigin(this.functionUrl, {
          // Prefer: wait holds a request up to 60 s; SSE streams send a comment at least this often.
          readTimeout: Duration.seconds(60),
          keepaliveTimeout: Duration.seconds(60),
        }),
        viewerProtocolPolicy: cloudfront.ViewerProtocolPolicy.HTTPS_ONLY,
        allowedMethods: cloudfront.AllowedMethods.ALLOW_ALL,
        cachePolicy: cloudfront.CachePolicy.CACHING_DISABLED,
        originRequestPolicy: cloudfront.OriginRequestPolicy.ALL_VIEWER_EXCEPT_HOST_HEADER,
        compress: false,
      },
    });
  }
}
