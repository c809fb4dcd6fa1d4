/**
 * One SQS message, start to finish: verify the envelope, claim the job, run the pipeline with
 * heartbeats and throttled progress, upload the outputs, finish the job, delete the message.
 *
 * How each failure ends:
 * - forged, altered, expired, malformed or misrouted envelope: the job (when its id is readable)
 *   fails with the envelope code and the message is deleted; retrying could never help.
 * - the job is already terminal or gone (a redelivery after the finish): delete, do nothing.
 * - another runner holds a live lease: the message is hidden until that lease ends.
 * - the pipeline refuses the input (`input_invalid`): the job fails, the message is deleted.
 * - the user canceled (cancelRequested seen by a progress write or heartbeat): the worker stops
 *   between steps and the job finishes canceled with the steps completed.
 * - anything else (S3, DynamoDB, the worker): retryable. The lease is released and the message is
 *   made visible again after a short backoff, so SQS redelivers it. On the last receive the job is
 *   failed with `max_attempts_exceeded` and the message is left for SQS to move to the DLQ.
 * - shutdown past the grace period (`abandon`): the lease and the message are released at once.
 */
import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import {
  ChangeMessageVisibilityCommand,
  DeleteMessageCommand,
  type Message,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import {
  EnvelopeError,
  type EnvelopePayload,
  type JobOutputRecord,
  type JobPreviewRecord,
  type JobRecord,
  type JobTimings,
  MESSAGE_ATTRIBUTES,
  outputKey,
  REQUEST_ID_MESSAGE_ATTRIBUTE,
  verifyEnvelope,
} from '@sd3/shared';
import { PipelineError } from '../errors.js';
import { decodeInputImage, encodeOutputImage, MIME_TYPES } from '../image/image-codec.js';
import { encodePreview } from '../image/preview-image.js';
import { CanceledError, type StepProgress } from '../pipeline/denoise.js';
import type { GenerationParams, InputImage } from '../pipeline/generation-params.js';
import { MAX_PREVIEWS } from '../pipeline/latent-preview.js';
import type { GenerationResult } from '../pipeline/sd3-pipeline.js';
import type { WorkerGenerateOptions } from '../worker/pipeline-worker.js';
import type { PreviewFrame } from '../worker/protocol.js';
import type { RunnerConfig } from './config.js';
import type { JobError, JobStore, LeaseState } from './job-store.js';
import { errorFields, type Logger } from './logger.js';
import type { MessageOutcome, RunnerEvents } from './queue-consumer.js';

/** The part of PipelineWorker the handler uses. */
export interface JobPipeline {
  readonly info: { loadMs: number };
  generate(params: GenerationParams, options?: WorkerGenerateOptions): Promise<GenerationResult>;
}

export type JobHandlerConfig = Pick<
  RunnerConfig,
  | 'queueUrl'
  | 'mediaBucket'
  | 'signingKeys'
  | 'modelId'
  | 'visibilityTimeoutSeconds'
  | 'heartbeatIntervalSeconds'
  | 'progressIntervalMs'
  | 'maxReceives'
  | 'retryBackoffSeconds'
>;

export interface JobHandlerOptions {
  config: JobHandlerConfig;
  sqs: SQSClient;
  s3: S3Client;
  store: JobStore;
  pipeline: JobPipeline;
  events: RunnerEvents;
  log: Logger;
}

/** Why the job in hand was stopped from outside the user's cancel. */
type StopReason = 'released' | 'lost';

interface MessageContext {
  messageId: string;
  receipt: string;
  receiveCount: number;
  log: Logger;
}

interface ActiveJob {
  jobId: string;
  ctx: MessageContext;
  /** Shutdown or a lost lease: aborts the pipeline and S3 calls. */
  stop: AbortController;
  /** The user's cancel: aborts the pipeline only (a finished render is still delivered). */
  cancel: AbortController;
  reporter: ProgressReporter;
  heartbeat: NodeJS.Timeout | undefined;
  beat: Promise<void> | null;
  /** Set by abandon(): the release in progress. */
  released: Promise<void> | null;
}

/**
 * Step progress to DynamoDB at most once per interval, never more than one write in flight. Live
 * previews (at most MAX_PREVIEWS a job) are encoded off the worker thread and written as soon as
 * no write is in flight, with the progress; a newer preview replaces one still waiting.
 */
class ProgressReporter {
  private last = Number.NEGATIVE_INFINITY;
  private inflight: Promise<void> | null = null;
  private closed = false;
  private latest: StepProgress | null = null;
  private pendingPreview: JobPreviewRecord | null = null;
  private previewsWritten = 0;
  private encoding: Promise<void> = Promise.resolve();

  constructor(
    private readonly store: JobStore,
    private readonly jobId: string,
    private readonly intervalMs: number,
    private readonly onState: (state: LeaseState) => void,
    private readonly log: Logger,
    private readonly events: RunnerEvents,
  ) {}

  readonly onStep = ({ step, totalSteps }: StepProgress): void => {
    this.events.emit('job_progress', { jobId: this.jobId, step, totalSteps });
    this.latest = { step, totalSteps };
    if (this.closed || this.inflight) return;
    if (this.pendingPreview) {
      this.writePreview();
      return;
    }
    const now = Date.now();
    if (now - this.last < this.intervalMs) return;
    this.last = now;
    this.write(this.store.progress(this.jobId, step, totalSteps), 'progress');
  };

  /** A preview frame from the worker: encoded here (sharp, off the denoise thread), written next. */
  readonly onPreview = (frame: PreviewFrame): void => {
    if (this.closed) return;
    this.encoding = this.encoding.then(async () => {
      try {
        const preview = await encodePreview(frame);
        if (this.closed) return;
        this.pendingPreview = preview;
        if (!this.inflight) this.writePreview();
      } catch (err) {
        this.log.warn('preview encode failed', errorFields(err));
      }
    });
  };

  private writePreview(): void {
    const preview = this.pendingPreview;
    if (!preview) return;
    this.pendingPreview = null;
    this.previewsWritten++;
    this.last = Date.now();
    const progress = this.latest ?? { step: preview.step, totalSteps: preview.totalSteps };
    this.write(this.store.preview(this.jobId, preview, progress), 'preview');
  }

  private write(pending: Promise<LeaseState>, what: string): void {
    this.inflight = pending
      .then(this.onState, (err: unknown) => this.log.warn(`${what} write failed`, errorFields(err)))
      .finally(() => {
        this.inflight = null;
        // A preview that came in while this write was in flight goes next.
        if (!this.closed && this.pendingPreview) this.writePreview();
      });
  }

  /**
   * No more writes; waits for the one in flight so later writes see its event. `flushPreview`
   * (the success path): a job that asked for previews but finished before any was written still
   * gets its latest one, so a fast job shows at least one.
   */
  async close(options: { flushPreview?: boolean } = {}): Promise<void> {
    if (options.flushPreview && !this.closed) {
      await this.encoding;
      while (this.inflight) await this.inflight;
      if (this.previewsWritten === 0 && this.pendingPreview) this.writePreview();
    }
    this.closed = true;
    while (this.inflight) await this.inflight;
  }
}

function attr(message: Message, name: string): string | undefined {
  return message.MessageAttributes?.[name]?.StringValue;
}

export class JobHandler {
  private current: ActiveJob | null = null;
  private processed = 0;
  private modelLoadReported = false;
  /** Set by abandon(): jobs are given back instead of run. */
  private abandoning = false;

  constructor(private readonly options: JobHandlerOptions) {}

  get currentJobId(): string | null {
    return this.current?.jobId ?? null;
  }

  get jobsProcessed(): number {
    return this.processed;
  }

  /** The queue consumer's callback. Never throws: every path ends in an outcome. */
  readonly handle = async (message: Message): Promise<void> => {
    const t0 = performance.now();
    const messageId = message.MessageId ?? '';
    const receiveCount = Number(message.Attributes?.ApproximateReceiveCount ?? 1);
    const ctx: MessageContext = {
      messageId,
      receipt: message.ReceiptHandle ?? '',
      receiveCount,
      log: this.options.log.child({
        message_id: messageId,
        request_id: attr(message, REQUEST_ID_MESSAGE_ATTRIBUTE),
        job_id: attr(message, MESSAGE_ATTRIBUTES.jobId),
        receive_count: receiveCount,
      }),
    };
    let jobId: string | undefined = attr(message, MESSAGE_ATTRIBUTES.jobId);
    let outcome: MessageOutcome;
    try {
      const result = await this.process(message.Body ?? '', ctx);
      outcome = result.outcome;
      jobId = result.jobId ?? jobId;
    } catch (err) {
      // Only reached when settling a failure itself failed; the message reappears on its own.
      ctx.log.error('message handling failed', errorFields(err));
      this.options.events.emit('error', { where: 'handle', error: err });
      outcome = 'retry';
    }
    const durationMs = Math.round(performance.now() - t0);
    ctx.log.info('message handled', { outcome, duration_ms: durationMs });
    if (jobId) this.options.events.emit('job_finished', { jobId, messageId, outcome, durationMs });
  };

  private async process(
    body: string,
    ctx: MessageContext,
  ): Promise<{ outcome: MessageOutcome; jobId?: string }> {
    const { config, store } = this.options;
    let payload: EnvelopePayload;
    try {
      payload = await verifyEnvelope(body, config.signingKeys);
    } catch (err) {
      if (!(err instanceof EnvelopeError)) throw err;
      const outcome = await this.reject(ctx, err.jobId, { code: err.code, message: err.message });
      return { outcome, ...(err.jobId ? { jobId: err.jobId } : {}) };
    }
    const jobId = payload.jobId;
    ctx.log = ctx.log.child({ job_id: jobId, tenant_id: payload.tenantId });
    if (payload.model !== config.modelId) {
      const message = `the envelope is for model ${payload.model}, this runner serves ${config.modelId}`;
      return { jobId, outcome: await this.reject(ctx, jobId, { code: 'envelope_invalid', message }) };
    }
    let claim: Awaited<ReturnType<JobStore['claim']>>;
    try {
      claim = await store.claim(jobId, { tenantId: payload.tenantId });
    } catch (err) {
      return { jobId, outcome: await this.retry(ctx, jobId, err, false) };
    }
    switch (claim.kind) {
      case 'missing':
      case 'terminal':
        ctx.log.info(claim.kind === 'missing' ? 'job not found, dropping message' : 'job already finished', {
          status: claim.kind === 'terminal' ? claim.record.status : undefined,
        });
        await this.deleteMessage(ctx);
        return { jobId, outcome: 'duplicate' };
      case 'mismatch': {
        const message = 'the envelope tenant does not match the job';
        return { jobId, outcome: await this.reject(ctx, undefined, { code: 'envelope_invalid', message }) };
      }
      case 'held': {
        // Come back when the holder's lease ends: if it died, the job is claimable then.
        const leftMs = (claim.record.leaseUntil ?? Date.now()) - Date.now();
        const hide = Math.min(43_200, Math.max(1, Math.ceil(leftMs / 1000) + 1));
        ctx.log.info('job held by another runner', { holder: claim.record.runnerId, hide_s: hide });
        await this.changeVisibility(ctx, hide);
        return { jobId, outcome: 'held' };
      }
      case 'claimed':
        return { jobId, outcome: await this.run(ctx, payload, claim.record) };
    }
  }

  /** A message that must never be retried: fail its job when readable, delete it. */
  private async reject(
    ctx: MessageContext,
    jobId: string | undefined,
    error: JobError,
  ): Promise<MessageOutcome> {
    ctx.log.warn('envelope refused', { code: error.code, reason: error.message, job_id: jobId });
    if (jobId) {
      try {
        const result = await this.options.store.failNonTerminal(jobId, error);
        ctx.log.info('refused job', { job_id: jobId, result });
      } catch (err) {
        return this.retry(ctx, jobId, err, false);
      }
    }
    await this.deleteMessage(ctx);
    return 'rejected';
  }

  /** A retryable failure: redelivery after a backoff, or the DLQ after the last receive. */
  private async retry(
    ctx: MessageContext,
    jobId: string | undefined,
    err: unknown,
    claimed: boolean,
  ): Promise<MessageOutcome> {
    const { config, store } = this.options;
    // A heartbeat in flight would stretch the visibility the backoff below sets.
    await this.stopHeartbeat();
    const last = ctx.receiveCount >= config.maxReceives;
    ctx.log.warn(last ? 'job failed on its last attempt' : 'job failed, will be retried', {
      ...errorFields(err),
      attempt: ctx.receiveCount,
      max_receives: config.maxReceives,
    });
    try {
      if (last && jobId) {
        const message = `failed on ${ctx.receiveCount} attempts; last error: ${(err as Error)?.message ?? String(err)}`;
        await store.failNonTerminal(jobId, { code: 'max_attempts_exceeded', message });
      } else if (claimed && jobId) {
        await store.releaseLease(jobId);
      }
    } catch (storeErr) {
      // The DLQ sweeper fails the job later if this was the last attempt.
      ctx.log.warn('could not update the job after a failure', errorFields(storeErr));
    }
    // On the last receive the next delivery attempt moves the message to the DLQ: let it happen now.
    const delay = last
      ? 0
      : Math.min(300, config.retryBackoffSeconds * 2 ** Math.max(0, ctx.receiveCount - 1));
    await this.changeVisibility(ctx, delay).catch(() => {});
    return last ? 'exhausted' : 'retry';
  }

  private async run(
    ctx: MessageContext,
    payload: EnvelopePayload,
    record: JobRecord,
  ): Promise<MessageOutcome> {
    const { config, store, events } = this.options;
    const jobId = payload.jobId;
    const stop = new AbortController();
    const cancel = new AbortController();
    const onState = (state: LeaseState) => {
      if (!state.held) stop.abort('lost' satisfies StopReason);
      else if (state.cancelRequested && !cancel.signal.aborted) {
        ctx.log.info('cancel requested');
        cancel.abort('canceled');
      }
    };
    const job: ActiveJob = {
      jobId,
      ctx,
      stop,
      cancel,
      reporter: new ProgressReporter(store, jobId, config.progressIntervalMs, onState, ctx.log, events),
      heartbeat: undefined,
      beat: null,
      released: null,
    };
    this.current = job;
    if (this.abandoning) {
      // Shutdown began while this message was being claimed: give it straight back.
      try {
        await this.release(job);
        return 'released';
      } finally {
        this.current = null;
      }
    }
    job.heartbeat = setInterval(() => {
      if (job.beat || stop.signal.aborted) return;
      job.beat = this.heartbeat(job, onState).finally(() => {
        job.beat = null;
      });
    }, config.heartbeatIntervalSeconds * 1000);
    const attempt = record.attempts ?? 1;
    events.emit('job_started', { jobId, messageId: ctx.messageId, attempt });
    ctx.log.info('job started', { attempt, steps: payload.params.steps, n: payload.params.n });
    const startedAt = record.startedAt ?? Date.now();
    const baseTimings = (): JobTimings => ({
      queue_ms: startedAt - record.createdAt,
      total_ms: Date.now() - record.createdAt,
    });
    try {
      try {
        if (record.cancelRequested) {
          await job.reporter.close();
          return await this.finishCanceled(ctx, jobId, 0, payload.params.steps, baseTimings());
        }
        return await this.generate(ctx, job, payload, baseTimings);
      } catch (err) {
        await job.reporter.close();
        if (stop.signal.aborted) {
          await job.released;
          const reason = stop.signal.reason as StopReason;
          ctx.log.info(reason === 'lost' ? 'lease lost to another runner' : 'job released on shutdown');
          return reason;
        }
        if (err instanceof CanceledError && cancel.signal.aborted) {
          return await this.finishCanceled(ctx, jobId, err.stepsCompleted, err.totalSteps, baseTimings());
        }
        if (err instanceof PipelineError && err.code === 'input_invalid') {
          const ok = await store.finishFailed(
            jobId,
            { code: 'input_invalid', message: err.message },
            baseTimings(),
          );
          ctx.log.info('job failed: input refused', { reason: err.message });
          if (!ok) return 'lost';
          await this.deleteAfterFinish(ctx);
          return 'completed';
        }
        return await this.retry(ctx, jobId, err, true);
      }
    } catch (err) {
      // Settling the outcome failed (DynamoDB or SQS down): retry the whole message.
      return this.retry(ctx, jobId, err, true);
    } finally {
      clearInterval(job.heartbeat);
      await job.beat;
      this.current = null;
      this.processed++;
    }
  }

  private async generate(
    ctx: MessageContext,
    job: ActiveJob,
    payload: EnvelopePayload,
    baseTimings: () => JobTimings,
  ): Promise<MessageOutcome> {
    const { config, store, pipeline, s3 } = this.options;
    const p = payload.params;
    const jobId = payload.jobId;
    const image = payload.inputs.image
      ? await this.readInput(payload.inputs.image, p.width, p.height, job.stop.signal)
      : undefined;
    const params: GenerationParams = {
      prompt: p.prompt,
      negativePrompt: p.negative_prompt,
      width: p.width,
      height: p.height,
      steps: p.steps,
      guidanceScale: p.guidance_scale,
      seed: p.seed,
      numImages: p.n,
      ...(image ? { image, strength: p.strength ?? 0.6 } : {}),
    };
    const result = await pipeline.generate(params, {
      onStep: job.reporter.onStep,
      signal: AbortSignal.any([job.stop.signal, job.cancel.signal]),
      ...(p.previews ? { previews: { maxPreviews: MAX_PREVIEWS, onPreview: job.reporter.onPreview } } : {}),
    });
    const tUpload = performance.now();
    // Generation parameters only (no job id or time), so the same seed gives the same bytes.
    const metadata = {
      model: config.modelId,
      prompt: p.prompt,
      negative_prompt: p.negative_prompt,
      width: p.width,
      height: p.height,
      steps: p.steps,
      guidance_scale: p.guidance_scale,
      seed: p.seed,
      n: p.n,
      ...(image ? { strength: params.strength } : {}),
    };
    const outputs: JobOutputRecord[] = await Promise.all(
      result.images.map(async (img, index) => {
        const file = await encodeOutputImage(img, p.output_format, {
          quality: p.output_quality,
          metadata: { ...metadata, index },
        });
        const key = outputKey(payload.tenantId, jobId, index, p.output_format);
        await s3.send(
          new PutObjectCommand({
            Bucket: config.mediaBucket,
            Key: key,
            Body: file,
            ContentType: MIME_TYPES[p.output_format],
          }),
          { abortSignal: job.stop.signal },
        );
        return {
          index,
          key,
          format: p.output_format,
          width: img.width,
          height: img.height,
          bytes: file.length,
          seed: p.seed,
        };
      }),
    );
    const uploadMs = performance.now() - tUpload;
    await job.reporter.close({ flushPreview: true });
    const firstJob = !this.modelLoadReported;
    this.modelLoadReported = true;
    const timings: JobTimings = {
      queue_ms: baseTimings().queue_ms,
      ...(firstJob ? { model_load_ms: pipeline.info.loadMs } : {}),
      encode_ms: result.timings.encodeMs,
      denoise_ms: result.timings.denoiseMs,
      decode_ms: result.timings.decodeMs,
      upload_ms: uploadMs,
      total_ms: baseTimings().total_ms,
    };
    if (!(await store.finishSucceeded(jobId, outputs, timings, result.stepsRun))) return 'lost';
    ctx.log.info('job succeeded', { timings, images: outputs.length });
    await this.deleteAfterFinish(ctx);
    return 'completed';
  }

  private async finishCanceled(
    ctx: MessageContext,
    jobId: string,
    stepsCompleted: number,
    totalSteps: number,
    timings: JobTimings,
  ): Promise<MessageOutcome> {
    const ok = await this.options.store.finishCanceled(jobId, stepsCompleted, totalSteps, timings);
    if (!ok) return 'lost';
    ctx.log.info('job canceled', { steps_completed: stepsCompleted, total_steps: totalSteps });
    await this.deleteAfterFinish(ctx);
    return 'completed';
  }

  private async readInput(
    key: string,
    width: number,
    height: number,
    signal: AbortSignal,
  ): Promise<InputImage> {
    const { s3, config } = this.options;
    let bytes: Uint8Array;
    try {
      const out = await s3.send(new GetObjectCommand({ Bucket: config.mediaBucket, Key: key }), {
        abortSignal: signal,
      });
      if (!out.Body) throw new Error(`empty body for ${key}`);
      bytes = await out.Body.transformToByteArray();
    } catch (err) {
      // The edge stores the input before it enqueues: a missing key will not appear on retry.
      if (err instanceof Error && err.name === 'NoSuchKey') {
        throw new PipelineError('input_invalid', `image: the input object ${key} does not exist`);
      }
      throw err;
    }
    return decodeInputImage(bytes, width, height);
  }

  private async heartbeat(job: ActiveJob, onState: (s: LeaseState) => void): Promise<void> {
    const { config, store } = this.options;
    const [visibility, lease] = await Promise.allSettled([
      this.changeVisibility(job.ctx, config.visibilityTimeoutSeconds),
      store.renew(job.jobId),
    ]);
    if (visibility.status === 'rejected') {
      job.ctx.log.warn('heartbeat: visibility not extended', errorFields(visibility.reason));
    }
    if (lease.status === 'rejected')
      job.ctx.log.warn('heartbeat: lease not renewed', errorFields(lease.reason));
    else if (!job.stop.signal.aborted) onState(lease.value);
    this.options.events.emit('job_heartbeat', {
      jobId: job.jobId,
      visibilityExtended: visibility.status === 'fulfilled',
      leaseRenewed: lease.status === 'fulfilled' && lease.value.held,
    });
  }

  /**
   * Shutdown past the grace period: stop the job in hand and give it back at once, so another
   * runner can claim it without waiting for the visibility timeout or the lease. A job claimed
   * after this call (a message already being received) is given back as soon as it starts.
   */
  async abandon(): Promise<void> {
    this.abandoning = true;
    if (this.current) await this.release(this.current);
  }

  private release(job: ActiveJob): Promise<void> {
    job.released ??= (async () => {
      job.stop.abort('released' satisfies StopReason);
      clearInterval(job.heartbeat);
      await job.reporter.close();
      await job.beat;
      const [lease, visibility] = await Promise.allSettled([
        this.options.store.releaseLease(job.jobId),
        this.changeVisibility(job.ctx, 0),
      ]);
      job.ctx.log.info('job given back', {
        lease_released: lease.status === 'fulfilled' && lease.value,
        message_released: visibility.status === 'fulfilled',
      });
    })();
    return job.released;
  }

  private async changeVisibility(ctx: MessageContext, seconds: number): Promise<void> {
    await this.options.sqs.send(
      new ChangeMessageVisibilityCommand({
        QueueUrl: this.options.config.queueUrl,
        ReceiptHandle: ctx.receipt,
        VisibilityTimeout: seconds,
      }),
    );
  }

  /**
   * The job is terminal already, so a failed delete (SQS unreachable, or a receipt handle gone stale
   * because the queue lost its messages) changes nothing: a redelivery finds the job finished and is
   * deleted as a duplicate. Retrying the job here would only release a lease it no longer needs.
   */
  private async deleteAfterFinish(ctx: MessageContext): Promise<void> {
    await this.stopHeartbeat();
    try {
      await this.deleteMessage(ctx);
    } catch (err) {
      ctx.log.warn('could not delete the finished job message; a redelivery is dropped as a duplicate', {
        ...errorFields(err),
      });
    }
  }

  /**
   * Ends the heartbeats of the job in hand before its message is deleted or released, so none
   * touches a message (or a lease) that is no longer this runner's.
   */
  private async stopHeartbeat(): Promise<void> {
    const job = this.current;
    if (!job) return;
    clearInterval(job.heartbeat);
    await job.beat;
  }

  private async deleteMessage(ctx: MessageContext): Promise<void> {
    await this.options.sqs.send(
      new DeleteMessageCommand({ QueueUrl: this.options.config.queueUrl, ReceiptHandle: ctx.receipt }),
    );
  }
}
