/**
 * The runner service: the health endpoint, the pipeline worker (model loaded once), the queue
 * consumer (one job at a time) and the DLQ sweeper, with a graceful stop.
 *
 * stop(): no new receives; the job in hand may finish within `graceSeconds`; past that it is
 * aborted and its message and lease are released at once, so another runner picks it up without
 * waiting for the visibility timeout. Then the worker is closed and `done` resolves.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import { PipelineError } from '../errors.js';
import { PipelineWorker } from '../worker/pipeline-worker.js';
import { type AwsClients, createAwsClients } from './aws-clients.js';
import type { RunnerConfig } from './config.js';
import { DlqSweeper } from './dlq-sweeper.js';
import { EventPublisher } from './event-publisher.js';
import { JobHandler, type JobPipeline } from './job-handler.js';
import { DynamoJobStore } from './job-store.js';
import { createLogger, errorFields, type Logger } from './logger.js';
import { verifyModelAtStart } from './model-verify.js';
import { QueueConsumer, RunnerEvents } from './queue-consumer.js';

export interface RunnerDeps {
  /** Clients to use instead of new ones; the runner does not destroy them. */
  clients?: AwsClients;
  /** An already loaded pipeline (tests share one); the runner does not close it. */
  pipeline?: JobPipeline;
  logger?: Logger;
}

export type RunnerState = 'loading' | 'ready' | 'stopping' | 'stopped';

export interface RunnerHealth {
  status: RunnerState;
  model: string;
  provider: string;
  runner_id: string;
  jobs_processed: number;
  current_job: string | null;
  /** Seconds since start. */
  uptime: number;
}

export interface RunnerHandle {
  readonly runnerId: string;
  readonly events: RunnerEvents;
  /** Port of GET /healthz. */
  readonly healthPort: number;
  health(): RunnerHealth;
  /** Stops gracefully (idempotent); resolves with `done`. */
  stop(reason?: string): Promise<void>;
  /** Resolves once the runner has fully stopped. */
  readonly done: Promise<void>;
  /** Why the runner stopped on its own (the pipeline worker died), or null. */
  failure(): Error | null;
}

function listen(server: Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

/** Starts the runner; rejects (after cleaning up) when the model or the provider fails to load. */
export async function startRunner(config: RunnerConfig, deps: RunnerDeps = {}): Promise<RunnerHandle> {
  const log = deps.logger ?? createLogger({ level: config.logLevel, fields: { runner_id: config.runnerId } });
  const events = new RunnerEvents();
  events.on('error', ({ where, error }) => log.error(`runner error (${where})`, errorFields(error)));
  const startedAt = Date.now();
  let state: RunnerState = 'loading';
  let handler: JobHandler | null = null;

  const health = (): RunnerHealth => ({
    status: state,
    model: config.modelId,
    provider: config.provider,
    runner_id: config.runnerId,
    jobs_processed: handler?.jobsProcessed ?? 0,
    current_job: handler?.currentJobId ?? null,
    uptime: Math.round((Date.now() - startedAt) / 1000),
  });

  // Up before the model loads, so the orchestrator sees 503 "loading" rather than nothing.
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' || path !== '/healthz') {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not found"}');
      return;
    }
    const body = health();
    res
      .writeHead(body.status === 'ready' ? 200 : 503, { 'content-type': 'application/json' })
      .end(JSON.stringify(body));
  });
  const healthPort = await listen(server, config.healthPort, config.healthHost);
  const closeServer = () => new Promise<void>((resolve) => server.close(() => resolve()));

  const clients = deps.clients ?? createAwsClients(config);
  const destroyClients = () => {
    if (!deps.clients) clients.destroy();
  };

  let worker: PipelineWorker | null = null;
  let pipeline: JobPipeline;
  try {
    if (deps.pipeline) pipeline = deps.pipeline;
    else {
      // Before loading: a corrupted weight file loads fine and then renders garbage.
      const verified = await verifyModelAtStart(config.modelDir, {
        mode: config.verifyModel,
        requireManifest: config.requireManifest,
      });
      if (verified.verified) {
        log.info('model verified against its manifest', {
          files: verified.files,
          bytes: verified.bytes,
          verify_ms: verified.ms,
        });
      } else {
        log.info('model not verified', { reason: verified.reason });
      }
      log.info('loading model', {
        model: config.modelId,
        model_dir: config.modelDir,
        provider: config.provider,
      });
      worker = await PipelineWorker.start({
        modelDir: config.modelDir,
        provider: config.provider,
        t5: config.t5,
      });
      pipeline = worker;
      log.info('model loaded', { load_ms: Math.round(worker.info.loadMs), dtype: worker.info.dtype });
    }
  } catch (err) {
    await closeServer();
    destroyClients();
    const code = err instanceof PipelineError ? err.code : 'internal';
    throw new PipelineError(
      code,
      `runner could not load model ${config.modelId} from ${config.modelDir} with provider ` +
        `${config.provider}: ${(err as Error).message}`,
      { cause: err },
    );
  }

  const maxReceives = await queueMaxReceives(clients, config, log);
  const publisher = config.eventsQueueUrl
    ? new EventPublisher(clients.sqs, config.eventsQueueUrl, log)
    : undefined;
  const store = new DynamoJobStore({
    ddb: clients.ddb,
    table: config.jobsTable,
    runnerId: config.runnerId,
    leaseMs: config.leaseMs,
    ...(config.tenantsTable ? { tenantsTable: config.tenantsTable } : {}),
    ...(config.usageTable ? { usageTable: config.usageTable } : {}),
    ...(publisher ? { onEvent: (record, event) => publisher.publish(record, event) } : {}),
  });
  const jobHandler = new JobHandler({
    config: { ...config, maxReceives },
    sqs: clients.sqs,
    s3: clients.s3,
    store,
    pipeline,
    events,
    log,
  });
  handler = jobHandler;
  const consumer = new QueueConsumer({
    sqs: clients.sqs,
    queueUrl: config.queueUrl,
    waitTimeSeconds: config.waitTimeSeconds,
    visibilityTimeoutSeconds: config.visibilityTimeoutSeconds,
    handleMessage: jobHandler.handle,
    events,
  });
  const sweeper = new DlqSweeper({
    sqs: clients.sqs,
    dlqUrl: config.dlqUrl,
    store,
    signingKeys: config.signingKeys,
    maxReceives,
    intervalMs: config.dlqSweepIntervalSeconds * 1000,
    hideSeconds: config.dlqHideSeconds,
    events,
    log,
  });
  state = 'ready';
  const consuming = consumer.start();
  sweeper.start();
  log.info('runner ready', {
    queue: config.queueUrl,
    health_port: healthPort,
    visibility_s: config.visibilityTimeoutSeconds,
    heartbeat_s: config.heartbeatIntervalSeconds,
    lease_ms: config.leaseMs,
    max_receives: maxReceives,
  });

  let resolveDone!: () => void;
  const done = new Promise<void>((resolve) => {
    resolveDone = resolve;
  });
  let stopping: Promise<void> | null = null;
  const stop = (reason = 'stop'): Promise<void> => {
    stopping ??= (async () => {
      state = 'stopping';
      log.info('runner stopping', {
        reason,
        current_job: jobHandler.currentJobId,
        grace_s: config.graceSeconds,
      });
      const consumerDone = consumer.stop();
      const sweeperDone = sweeper.stop();
      // Raced even when idle: a message may be between receive and claim right now.
      let timer: NodeJS.Timeout | undefined;
      const graceOver = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), config.graceSeconds * 1000);
      });
      const first = await Promise.race([consumerDone.then(() => 'done' as const), graceOver]);
      clearTimeout(timer);
      if (first === 'timeout') {
        if (jobHandler.currentJobId) {
          log.warn('grace period over, releasing the job in hand', { job_id: jobHandler.currentJobId });
        }
        await jobHandler.abandon();
      }
      await Promise.all([consumerDone, consuming, sweeperDone]);
      if (worker) await worker.close();
      await closeServer();
      await publisher?.flush();
      destroyClients();
      state = 'stopped';
      log.info('runner stopped', { jobs_processed: jobHandler.jobsProcessed });
      resolveDone();
    })();
    return stopping;
  };

  // A dead worker thread cannot run any job: stop taking messages (health turns 503) and exit
  // non-zero so the orchestrator replaces this task; the job in hand is released for another runner.
  let failure: Error | null = null;
  worker?.onFailure((err) => {
    failure = err;
    log.error('pipeline worker died; stopping the runner', { error: err.message });
    void stop('pipeline worker died');
  });

  return {
    runnerId: config.runnerId,
    events,
    healthPort,
    health,
    stop,
    done,
    failure: () => failure,
  };
}

/**
 * The queue's own redrive threshold decides when SQS moves a message to the DLQ; the runner must
 * know it to recognise the last attempt. A mismatch with the configuration is logged and the
 * queue wins; when the queue cannot be read the configured value is used.
 */
async function queueMaxReceives(clients: AwsClients, config: RunnerConfig, log: Logger): Promise<number> {
  try {
    const out = await clients.sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: config.queueUrl, AttributeNames: ['RedrivePolicy'] }),
    );
    const policy = out.Attributes?.['RedrivePolicy'];
    if (!policy) {
      log.warn('the jobs queue has no redrive policy: failed messages are retried without limit');
      return config.maxReceives;
    }
    const fromQueue = Number((JSON.parse(policy) as { maxReceiveCount?: unknown }).maxReceiveCount);
    if (Number.isInteger(fromQueue) && fromQueue > 0) {
      if (fromQueue !== config.maxReceives) {
        log.warn('configured max receives differs from the queue redrive policy; using the queue', {
          configured: config.maxReceives,
          queue: fromQueue,
        });
      }
      return fromQueue;
    }
  } catch (err) {
    log.warn('could not read the jobs queue redrive policy', errorFields(err));
  }
  return config.maxReceives;
}
