/**
 * The whole system on one machine with real wire protocols: emulators, tables/queues/bucket, a
 * seeded tenant and key, the edge on a Node server, and one runner process on the CPU with the
 * tiny model (generated on first use) or a real SD3 folder. Used by `npm start` and the
 * end-to-end tests.
 */
import { randomBytes } from 'node:crypto';
import { access } from 'node:fs/promises';
import { join } from 'node:path';
import {
  createAwsDeps,
  createAwsNotifier,
  createAwsReconciler,
  createJsonLogger,
  type EdgeServer,
  type ReconcileReport,
  silentLogger,
  startEdgeServer,
  startNotifierLoop,
  startReconcilerLoop,
} from '@sd3/edge';
import { readModelConfig, writeTinyModel } from '@sd3/gpu-runner';
import { EDGE_ENV, ENV, type ModelInfo, NOTIFIER_ENV, RECONCILER_ENV, RUNNER_ENV } from '@sd3/shared';
import { startEdgeProcess } from './edge-process.js';
import { type Emulators, startEmulators } from './emulators.js';
import { type FaultProxy, startDynamoFaultProxy } from './fault-proxy.js';
import {
  createLocalResources,
  createQueueResources,
  type LocalResources,
  localClients,
} from './resources.js';
import { type RunnerProcess, startRunnerProcess } from './runner-process.js';
import { startS3CorsProxy } from './s3-cors-proxy.js';
import { type SeededKey, seedTenantAndKey } from './seed.js';

export interface LocalStackOptions {
  /** Edge port; 0 picks a free one. */
  port?: number;
  /** A real SD3 ONNX folder; without it the tiny model in `tinyModelDir` is used (created if missing). */
  modelDir?: string;
  tinyModelDir: string;
  /** Reuse this API key (sk_…) instead of generating one. */
  apiKey?: string;
  provider?: string;
  /** Extra runner environment (tunables such as visibility and lease). */
  runnerEnv?: Record<string, string>;
  /** Jobs queue visibility timeout (s). */
  visibilityTimeoutSeconds?: number;
  startRunner?: boolean;
  onRunnerLine?: (line: string) => void;
  edgeLogs?: boolean;
  /** Webhook retry delays (ms) of the notifier loop; default the production schedule. */
  webhookRetryScheduleMs?: number[];
  /** How often the crash-recovery reconciler runs (ms); default 60 000 (the AWS schedule). */
  reconcilerIntervalMs?: number;
  /** The reconciler's staleness threshold (ms); default its production default (15 minutes). */
  reconcilerStaleAfterMs?: number;
  /**
   * The edge reaches DynamoDB through a fault-injecting proxy (`stack.dynamoFaults`, passing
   * everything through until given a rule); runners and the notifier keep the direct endpoint.
   */
  edgeDynamoFaults?: boolean;
  /** Run the edge and the notifier loop in a child process (local/edge-process.ts), e.g. to measure its memory. */
  edgeProcess?: boolean;
}

export interface LocalStack {
  url: string;
  /** The process serving the edge: this one, or its child with `edgeProcess`. */
  edgePid: number;
  apiKey: SeededKey;
  model: ModelInfo;
  tiny: boolean;
  emulators: Emulators;
  resources: LocalResources;
  /** Environment of a runner for this stack. */
  runnerEnv: Record<string, string>;
  runner: RunnerProcess | null;
  startRunner(extraEnv?: Record<string, string>): Promise<RunnerProcess>;
  /**
   * Crashes the SQS/S3 emulator (fauxqs keeps everything in memory: queued and in-flight
   * messages and stored objects are lost) and starts it again on the same port, then recreates
   * the queues and the bucket with the same URLs (in AWS those are durable). `whileDown` runs
   * in between, to observe the outage.
   */
  restartQueueEmulator(options?: { whileDown?: () => Promise<void> }): Promise<void>;
  /** The proxy between the edge and DynamoDB, with `edgeDynamoFaults`. */
  dynamoFaults: FaultProxy | null;
  /** Runs the crash-recovery reconciler now (after a run in progress) and returns its counts. */
  reconcileNow(): Promise<ReconcileReport>;
  stop(): Promise<void>;
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

export async function startLocalStack(options: LocalStackOptions): Promise<LocalStack> {
  const tiny = !options.modelDir;
  const modelDir = options.modelDir ?? options.tinyModelDir;
  if (tiny && !(await exists(join(modelDir, 'model_index.json')))) await writeTinyModel(modelDir);
  const config = await readModelConfig(modelDir);
  const nativeSize = config.transformer.sampleSize * config.vae.scaleFactor;
  const modelId = tiny ? 'sd3-tiny' : 'sd3-medium';
  const model: ModelInfo = {
    id: modelId,
    object: 'model',
    description: tiny
      ? 'Tiny SD3-shaped model with random weights (images are noise; every part of the pipeline runs)'
      : `SD3 ONNX model from ${modelDir}`,
    default: true,
    native_size: nativeSize,
    // The tiny model runs on the CPU in tests; real SD3 is good to about 2 MP.
    max_megapixels: tiny ? 0.3 : 2.1,
    max_steps: tiny ? 500 : 100,
    default_steps: 28,
    default_guidance_scale: 7,
    output_formats: ['png', 'jpeg', 'webp'],
    // 10 millicredits per megapixel-step: one 1 MP image at 28 steps costs 0.280 credits.
    price: { millicredits_per_megapixel_step: 10, minimum_millicredits: 1 },
  };
  const emulators = await startEmulators();
  let edge: EdgeServer | null = null;
  let runner: RunnerProcess | null = null;
  const runners: RunnerProcess[] = [];
  const cleanup: (() => Promise<unknown>)[] = [() => emulators.stop()];
  try {
    const resourceOptions = {
      models: [modelId],
      ...(options.visibilityTimeoutSeconds
        ? { visibilityTimeoutSeconds: options.visibilityTimeoutSeconds }
        : {}),
    };
    const resources = await createLocalResources(emulators, resourceOptions);
    const { dynamodb } = localClients(emulators);
    const apiKey = await seedTenantAndKey(
      dynamodb,
      resources.tables,
      options.apiKey ? { apiKey: options.apiKey } : {},
    );
    dynamodb.destroy();
    const kid = 'local-1';
    const signingKeys = JSON.stringify({ [kid]: randomBytes(32).toString('base64') });
    let dynamoFaults: FaultProxy | null = null;
    if (options.edgeDynamoFaults) {
      const proxy = await startDynamoFaultProxy(emulators.dynamodbEndpoint);
      dynamoFaults = proxy;
      cleanup.push(() => proxy.close());
    }
    // The bucket's CORS rule (as in AWS) in front of fauxqs, so a page can fetch presigned outputs.
    const s3Cors = await startS3CorsProxy(emulators.s3Endpoint);
    cleanup.push(() => s3Cors.close());
    const edgeEnv = {
      ...resources.env,
      [ENV.AWS_ENDPOINT_S3]: s3Cors.endpoint,
      ...(dynamoFaults ? { [ENV.AWS_ENDPOINT_DYNAMODB]: dynamoFaults.endpoint } : {}),
      [ENV.SIGNING_KEYS]: signingKeys,
      [ENV.SIGNING_KEY_ID]: kid,
      [EDGE_ENV.MODELS]: JSON.stringify([model]),
    };
    const notifierEnv = {
      ...resources.env,
      [NOTIFIER_ENV.ALLOW_LOCAL_HTTP]: 'true',
      ...(options.webhookRetryScheduleMs
        ? { [NOTIFIER_ENV.RETRY_SCHEDULE_MS]: JSON.stringify(options.webhookRetryScheduleMs) }
        : {}),
    };
    let edgeUrl: string;
    let edgePid = process.pid;
    if (options.edgeProcess) {
      const child = await startEdgeProcess(
        { ...notifierEnv, ...edgeEnv },
        { port: options.port ?? 0, logs: options.edgeLogs !== false },
      );
      cleanup.unshift(async () => child.stop());
      edgeUrl = child.url;
      edgePid = child.pid;
    } else {
      const deps = createAwsDeps(edgeEnv, options.edgeLogs === false ? { logger: silentLogger } : {});
      cleanup.unshift(async () => deps.destroy());
      edge = await startEdgeServer({ port: options.port ?? 0, hostname: '127.0.0.1', deps });
      const edgeServer = edge;
      cleanup.unshift(() => edgeServer.close());
      // The webhook notifier as a loop on the events queue; local mode lets it post to http://127.0.0.1.
      const notifier = createAwsNotifier(notifierEnv, {
        logger: options.edgeLogs === false ? silentLogger : createJsonLogger(),
      });
      const notifierLoop = startNotifierLoop({
        sqs: notifier.sqs,
        queueUrl: notifier.queueUrl,
        deps: notifier.deps,
      });
      cleanup.unshift(async () => {
        await notifierLoop.stop();
        notifier.destroy();
      });
      edgeUrl = edge.url;
    }
    // The crash-recovery reconciler on a timer, as the scheduled Lambda runs it in AWS. It talks
    // to DynamoDB directly (not through the edge's fault proxy): it is a separate function there.
    const reconciler = createAwsReconciler(
      {
        ...resources.env,
        [ENV.SIGNING_KEYS]: signingKeys,
        [ENV.SIGNING_KEY_ID]: kid,
        ...(options.reconcilerStaleAfterMs !== undefined
          ? { [RECONCILER_ENV.STALE_AFTER_MS]: String(options.reconcilerStaleAfterMs) }
          : {}),
      },
      options.edgeLogs === false ? { logger: silentLogger } : {},
    );
    const reconcilerLoop = startReconcilerLoop({
      reconciler: reconciler.reconciler,
      intervalMs: options.reconcilerIntervalMs ?? 60_000,
      logger: reconciler.deps.logger,
    });
    cleanup.unshift(async () => {
      await reconcilerLoop.stop();
      reconciler.destroy();
    });
    const queue = resources.queues[modelId]!;
    const runnerEnv: Record<string, string> = {
      ...resources.env,
      [ENV.SIGNING_KEYS]: signingKeys,
      [ENV.JOB_QUEUE_URL]: queue.url,
      [ENV.DLQ_URL]: queue.dlqUrl,
      [ENV.MODEL_ID]: modelId,
      [ENV.MODEL_DIR]: modelDir,
      [ENV.PROVIDER]: options.provider ?? 'cpu',
      [RUNNER_ENV.WAIT_TIME_SECONDS]: '1',
      ...options.runnerEnv,
    };
    const startRunner = async (extraEnv: Record<string, string> = {}) => {
      const r = await startRunnerProcess(
        { ...runnerEnv, ...extraEnv },
        options.onRunnerLine ? { onLine: options.onRunnerLine } : {},
      );
      runners.push(r);
      await r.ready();
      return r;
    };
    if (options.startRunner !== false) runner = await startRunner();
    return {
      url: edgeUrl,
      edgePid,
      apiKey,
      model,
      tiny,
      emulators,
      resources,
      runnerEnv,
      runner,
      startRunner,
      dynamoFaults,
      reconcileNow: () => reconcilerLoop.runNow(),
      async restartQueueEmulator(restart = {}) {
        await emulators.stopQueueEmulator();
        // The emulator comes back even when the observer fails; its failure is rethrown after.
        const observed = await (restart.whileDown?.() ?? Promise.resolve()).then(
          () => ({ ok: true as const }),
          (error: unknown) => ({ ok: false as const, error }),
        );
        await emulators.startQueueEmulator();
        const again = await createQueueResources(emulators, resourceOptions);
        if (JSON.stringify(again.queues) !== JSON.stringify(resources.queues)) {
          throw new Error(`queue URLs changed across the restart: ${JSON.stringify(again.queues)}`);
        }
        if (!observed.ok) throw observed.error;
      },
      async stop() {
        await Promise.all(runners.map((r) => r.stop()));
        for (const step of cleanup) await step();
      },
    };
  } catch (err) {
    await Promise.all(runners.map((r) => r.kill()));
    for (const step of cleanup) await step().catch(() => undefined);
    throw err;
  }
}
