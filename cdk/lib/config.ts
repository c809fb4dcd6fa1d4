/**
 * The deployment's typed configuration: a preset (`dev`, `prod`) chosen with `-c preset=…`, then
 * overrides from CDK context, validated with zod before anything is synthesized. The simulation
 * (cdk/sim) reads the same objects, so the numbers it reports are the numbers that get deployed.
 *
 * This file imports nothing from aws-cdk-lib on purpose: the simulator and the config tests load it
 * without paying for the CDK import.
 */
import { z } from 'zod';

/** The retention periods CloudWatch Logs accepts (days). */
export const LOG_RETENTION_DAYS = [
  1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
] as const;

export const PRESET_NAMES = ['dev', 'prod'] as const;
export type PresetName = (typeof PRESET_NAMES)[number];

const InstanceType = z
  .string()
  .regex(/^(g5|g6|g6e|g5g|g4dn|p4d|p5)\.[0-9]*x?large$/, 'a GPU instance type such as g6.xlarge');

/** What GET /v1/models shows for a model (the edge validates the same shape at cold start). */
const ModelApiSchema = z.strictObject({
  description: z.string().min(1),
  nativeSize: z.number().int().positive(),
  maxMegapixels: z.number().positive(),
  maxSteps: z.number().int().positive(),
  defaultSteps: z.number().int().positive(),
  defaultGuidanceScale: z.number().nonnegative(),
  outputFormats: z.array(z.enum(['png', 'jpeg', 'webp'])).min(1),
  /** Credits charged per megapixel-step (in millicredits); absent: the model is free. */
  price: z
    .strictObject({
      millicreditsPerMegapixelStep: z.number().int().min(0).max(1_000_000),
      minimumMillicredits: z.number().int().min(0).optional(),
    })
    .optional(),
});

export const ModelConfigSchema = z
  .strictObject({
    /** Model id as clients name it; also part of queue names. */
    id: z.string().regex(/^[a-z0-9][a-z0-9-]{0,39}$/, 'lower-case letters, digits and dashes, at most 40'),
    /** Folder in the models bucket that `sd3 models push` wrote (manifest.json at its root). */
    s3Prefix: z
      .string()
      .regex(/^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/, 'a relative S3 prefix without leading or trailing /'),
    /** Instance types, most preferred first (one GPU each: one task per instance). */
    instanceTypes: z.array(InstanceType).min(1),
    /** onnxruntime execution provider the runner must load. */
    provider: z.enum(['cuda', 'tensorrt']).default('cuda'),
    minTasks: z.number().int().min(0),
    maxTasks: z.number().int().min(1).max(100),
    /** Seconds one 1024² image at the default steps takes on the first instance type (measured or estimated). */
    secondsPerImage: z.number().positive(),
    /** Target of (visible + in-flight messages) / running tasks: acceptable wait ÷ seconds per image. */
    targetBacklogPerTask: z.number().positive(),
    /** Seconds from "task placed" to "runner ready": model sync from S3 (warm cache: verify only) + session creation. */
    modelLoadSeconds: z.number().nonnegative(),
    /** Memory reserved for the runner container (MiB); the instance must have this much free. */
    memoryReservationMiB: z.number().int().min(1024),
    /** Load the T5 encoder (false fits 24 GB GPUs with room to spare, at a cost in prompt adherence). */
    t5: z.boolean().default(true),
    default: z.boolean().default(false),
    api: ModelApiSchema,
  })
  .refine((m) => m.minTasks <= m.maxTasks, {
    message: 'minTasks must not exceed maxTasks',
    path: ['minTasks'],
  })
  .refine((m) => m.api.defaultSteps <= m.api.maxSteps, {
    message: 'api.defaultSteps must not exceed api.maxSteps',
    path: ['api', 'defaultSteps'],
  });
export type ModelConfig = z.infer<typeof ModelConfigSchema>;

export const DeployConfigSchema = z
  .strictObject({
    preset: z.enum(PRESET_NAMES),
    stackName: z.string().regex(/^[A-Za-z][A-Za-z0-9-]{0,63}$/),
    models: z.array(ModelConfigSchema).min(1),
    capacity: z.strictObject({
      /** On-demand instances kept before any spot (per model fleet). */
      onDemandBaseCapacity: z.number().int().min(0),
      /** Share of on-demand above the base, 0–100 (0: everything above the base is spot). */
      onDemandPercentageAboveBase: z.number().int().min(0).max(100),
      /** Root volume (image layers, logs); the model cache lives on instance storage. */
      rootVolumeGiB: z.number().int().min(30).max(1000),
      /** Seconds from launch request to an ECS container instance registered (AMI boot + agent + image pull). */
      instanceBootSeconds: z.number().positive(),
    }),
    scaling: z.strictObject({
      /** Minimum time between two scale-outs of the target tracking policy (seconds). */
      scaleOutCooldownSeconds: z.number().int().min(0),
      /** Minimum time between two scale-ins (seconds). */
      scaleInCooldownSeconds: z.number().int().min(0),
      /** Wake-from-zero alarm: period (seconds) and datapoints that must breach. */
      wakePeriodSeconds: z.union([z.literal(10), z.literal(30), z.literal(60)]),
      wakeEvaluationPeriods: z.number().int().min(1).max(5),
    }),
    queue: z.strictObject({
      /** How often the runner extends a message's visibility while it works on it. */
      heartbeatSeconds: z.number().int().min(5),
      /** Visibility timeout of the jobs queues: how long a message stays hidden between heartbeats. */
      visibilityTimeoutSeconds: z.number().int().min(10).max(43_200),
      /** Retention of job messages (a job nobody could run in this time is abandoned). */
      retentionHours: z.number().int().min(1).max(336),
    }),
    network: z.strictObject({
      /** 0: GPU instances in public subnets with no inbound rule (no NAT cost); ≥1: private subnets behind NAT. */
      natGateways: z.number().int().min(0).max(3),
      maxAzs: z.number().int().min(2).max(3),
    }),
    edge: z.strictObject({
      /** Entry file of the Lambda handler, relative to the repository root. */
      entry: z.string().min(1),
      memoryMiB: z.number().int().min(128).max(10_240),
      timeoutSeconds: z.number().int().min(3).max(900),
    }),
    retention: z.strictObject({
      inputsDays: z.number().int().min(1),
      outputsDays: z.number().int().min(1),
      accessLogsDays: z.number().int().min(1),
      /** CloudWatch Logs retention; one of the values CloudWatch accepts. */
      logDays: z.literal(LOG_RETENTION_DAYS),
    }),
    alarms: z.strictObject({
      /** Oldest jobs-queue message age that pages (seconds); must exceed a cold start where scale-to-zero is on. */
      oldestMessageAgeSeconds: z.number().int().min(60),
      /** Edge 5xx share of requests (percent) over 5 minutes. */
      edge5xxPercent: z.number().positive().max(100),
      /** Runner error log lines per 5 minutes. */
      runnerErrorsPer5Min: z.number().int().min(1),
      /** Optional address that gets alarm e-mails (an SNS subscription to confirm). */
      email: z.email().optional(),
    }),
    /** `destroy` deletes buckets and tables with the stack (dev); `retain` keeps them (prod). */
    removal: z.enum(['destroy', 'retain']),
    /** Prices for the simulator's cost column (USD per hour, your region; estimates, not deployed). */
    prices: z.record(
      InstanceType,
      z.strictObject({ onDemand: z.number().positive(), spot: z.number().positive() }),
    ),
    /** Spot interruptions per instance-hour, for the simulator only. */
    spotInterruptionsPerHour: z.number().min(0),
  })
  .superRefine((c, ctx) => {
    const ids = new Set<string>();
    for (const [i, m] of c.models.entries()) {
      if (ids.has(m.id))
        ctx.addIssue({ code: 'custom', path: ['models', i, 'id'], message: `duplicate model ${m.id}` });
      ids.add(m.id);
      for (const t of m.instanceTypes) {
        if (!c.prices[t]) {
          ctx.addIssue({
            code: 'custom',
            path: ['models', i, 'instanceTypes'],
            message: `no price for ${t}`,
          });
        }
      }
    }
    if (c.models.filter((m) => m.default).length > 1) {
      ctx.addIssue({ code: 'custom', path: ['models'], message: 'at most one model may be the default' });
    }
    // The runner's job lease is visibility − heartbeat and must outlive one heartbeat interval.
    if (c.queue.heartbeatSeconds * 2 >= c.queue.visibilityTimeoutSeconds) {
      ctx.addIssue({
        code: 'custom',
        path: ['queue', 'heartbeatSeconds'],
        message: `must be less than half of visibilityTimeoutSeconds (${c.queue.visibilityTimeoutSeconds})`,
      });
    }
  });
export type DeployConfig = z.infer<typeof DeployConfigSchema>;
type DeployConfigInput = z.input<typeof DeployConfigSchema>;

/**
 * SD3 Medium on L4 (g6.xlarge) or A10G (g5.xlarge), one GPU each. Seconds per image is the midpoint
 * of the L4 estimate in perf-and-style.md A2 (8–12 s at 28 steps, 1024²); measure and override.
 */
const SD3_MEDIUM: z.input<typeof ModelConfigSchema> = {
  id: 'sd3-medium',
  s3Prefix: 'sd3-medium',
  instanceTypes: ['g6.xlarge', 'g5.xlarge'],
  provider: 'cuda',
  minTasks: 0,
  maxTasks: 2,
  secondsPerImage: 10,
  targetBacklogPerTask: 6,
  modelLoadSeconds: 90,
  memoryReservationMiB: 12_288,
  t5: true,
  default: true,
  api: {
    description: 'Stable Diffusion 3 Medium (MMDiT, three text encoders, 16-channel VAE)',
    nativeSize: 1024,
    maxMegapixels: 1.05,
    maxSteps: 60,
    defaultSteps: 28,
    defaultGuidanceScale: 7,
    outputFormats: ['png', 'jpeg', 'webp'],
    // About 1.2 credits for a 1024x1024, 28-step image; credits are your own unit of account.
    price: { millicreditsPerMegapixelStep: 40, minimumMillicredits: 100 },
  },
};

/** us-east-1 list prices (on-demand) and typical spot prices, USD per hour; override for your region. */
const PRICES = {
  'g6.xlarge': { onDemand: 0.805, spot: 0.38 },
  'g5.xlarge': { onDemand: 1.006, spot: 0.45 },
  'g6e.xlarge': { onDemand: 1.861, spot: 0.85 },
};

/**
 * Numbers chosen with `npm run simulate` (see the operator README for the table):
 * dev scales to zero on spot and accepts a cold start; prod keeps one on-demand task warm and
 * bursts on spot with a tighter backlog target.
 */
export const PRESETS: Record<PresetName, DeployConfigInput> = {
  dev: {
    preset: 'dev',
    stackName: 'Sd3Dev',
    models: [SD3_MEDIUM],
    capacity: {
      onDemandBaseCapacity: 0,
      onDemandPercentageAboveBase: 0,
      rootVolumeGiB: 60,
      instanceBootSeconds: 150,
    },
    scaling: {
      scaleOutCooldownSeconds: 180,
      scaleInCooldownSeconds: 300,
      wakePeriodSeconds: 60,
      wakeEvaluationPeriods: 1,
    },
    queue: { heartbeatSeconds: 20, visibilityTimeoutSeconds: 90, retentionHours: 24 },
    network: { natGateways: 0, maxAzs: 2 },
    edge: { entry: 'edge/src/adapters/aws-lambda.ts', memoryMiB: 1024, timeoutSeconds: 90 },
    retention: { inputsDays: 1, outputsDays: 7, accessLogsDays: 30, logDays: 14 },
    alarms: { oldestMessageAgeSeconds: 900, edge5xxPercent: 5, runnerErrorsPer5Min: 5 },
    removal: 'destroy',
    prices: PRICES,
    spotInterruptionsPerHour: 0.02,
  },
  prod: {
    preset: 'prod',
    stackName: 'Sd3Prod',
    models: [{ ...SD3_MEDIUM, minTasks: 1, maxTasks: 8, targetBacklogPerTask: 3 }],
    capacity: {
      onDemandBaseCapacity: 1,
      onDemandPercentageAboveBase: 0,
      rootVolumeGiB: 60,
      instanceBootSeconds: 150,
    },
    scaling: {
      // At least boot + model load: the tracked metric divides by running tasks, so a shorter
      // cooldown scales out again before the first new task counts (simulated: overshoot to max).
      scaleOutCooldownSeconds: 300,
      scaleInCooldownSeconds: 600,
      wakePeriodSeconds: 60,
      wakeEvaluationPeriods: 1,
    },
    queue: { heartbeatSeconds: 20, visibilityTimeoutSeconds: 90, retentionHours: 72 },
    network: { natGateways: 1, maxAzs: 2 },
    edge: { entry: 'edge/src/adapters/aws-lambda.ts', memoryMiB: 1024, timeoutSeconds: 90 },
    retention: { inputsDays: 1, outputsDays: 30, accessLogsDays: 90, logDays: 30 },
    alarms: { oldestMessageAgeSeconds: 300, edge5xxPercent: 1, runnerErrorsPer5Min: 3 },
    removal: 'retain',
    prices: PRICES,
    spotInterruptionsPerHour: 0.02,
  },
};

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Deep merge for overrides: objects merge key by key, arrays and scalars replace. */
export function mergeOverrides(base: unknown, override: unknown): unknown {
  if (!isPlainObject(base) || !isPlainObject(override)) return override === undefined ? base : override;
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(override)) out[k] = mergeOverrides(base[k], v);
  return out;
}

function formatIssues(error: z.ZodError): string {
  return error.issues.map((i) => `  ${i.path.join('.') || '(config)'}: ${i.message}`).join('\n');
}

/** A preset with overrides applied, validated. Throws ConfigError naming every bad field. */
export function resolveConfig(preset: string, overrides: unknown = {}): DeployConfig {
  if (!(PRESET_NAMES as readonly string[]).includes(preset)) {
    throw new ConfigError(`unknown preset ${JSON.stringify(preset)}; use one of ${PRESET_NAMES.join(', ')}`);
  }
  const merged = mergeOverrides(PRESETS[preset as PresetName], overrides);
  const parsed = DeployConfigSchema.safeParse(merged);
  if (!parsed.success) {
    throw new ConfigError(`invalid deploy config (preset ${preset}):\n${formatIssues(parsed.error)}`);
  }
  return parsed.data;
}

/**
 * Reads the config from CDK context values: `preset` (default dev) and `config`, a JSON object of
 * overrides (`-c config='{"models":[…]}'` or a `config` object in cdk.json / cdk.context.json).
 */
export function configFromContext(get: (key: string) => unknown): DeployConfig {
  const preset = get('preset') ?? 'dev';
  let overrides = get('config') ?? {};
  if (typeof overrides === 'string') {
    try {
      overrides = JSON.parse(overrides);
    } catch (err) {
      throw new ConfigError(`context "config" is not valid JSON: ${(err as Error).message}`);
    }
  }
  if (!isPlainObject(overrides)) throw new ConfigError('context "config" must be a JSON object of overrides');
  return resolveConfig(String(preset), overrides);
}

/**
 * Stop timeout of the runner container: one image plus margin, within the 120 s ECS allows. The
 * runner's grace period is a little shorter so it releases the message before the SIGKILL.
 */
export function stopTimeoutSeconds(model: ModelConfig): number {
  return Math.min(120, Math.max(30, Math.ceil(model.secondsPerImage * 1.5) + 10));
}

export function graceSeconds(model: ModelConfig): number {
  return stopTimeoutSeconds(model) - 5;
}

/** The GET /v1/models objects the edge serves (EDGE_ENV.MODELS). */
export function modelInfos(config: DeployConfig) {
  const defaultId = (config.models.find((m) => m.default) ?? config.models[0]!).id;
  return config.models.map((m) => ({
    id: m.id,
    object: 'model' as const,
    description: m.api.description,
    default: m.id === defaultId,
    native_size: m.api.nativeSize,
    max_megapixels: m.api.maxMegapixels,
    max_steps: m.api.maxSteps,
    default_steps: m.api.defaultSteps,
    default_guidance_scale: m.api.defaultGuidanceScale,
    output_formats: m.api.outputFormats,
    ...(m.api.price
      ? {
          price: {
            millicredits_per_megapixel_step: m.api.price.millicreditsPerMegapixelStep,
            ...(m.api.price.minimumMillicredits !== undefined
              ? { minimum_millicredits: m.api.price.minimumMillicredits }
              : {}),
          },
        }
      : {}),
  }));
}
