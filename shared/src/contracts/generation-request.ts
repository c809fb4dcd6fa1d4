/**
 * The body of POST /v1/generations: the single source of the request type, its validation and
 * its OpenAPI schema. Model-dependent limits (size, steps) are checked against the model catalog
 * by `normalizeRequest`.
 */
import { z } from 'zod';
import { ModelPriceSchema } from './billing.js';

export const OUTPUT_FORMATS = ['png', 'jpeg', 'webp'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

/** Sizes at about one megapixel for a model whose native size is 1024 (Stability's table). */
export const ASPECT_RATIOS = {
  '1:1': [1024, 1024],
  '16:9': [1344, 768],
  '21:9': [1536, 640],
  '2:3': [832, 1216],
  '3:2': [1216, 832],
  '4:5': [896, 1088],
  '5:4': [1088, 896],
  '9:16': [768, 1344],
  '9:21': [640, 1536],
} as const satisfies Record<string, readonly [number, number]>;
export type AspectRatio = keyof typeof ASPECT_RATIOS;

export const EVENT_TYPES = [
  'generation.queued',
  'generation.started',
  'generation.progress',
  'generation.preview',
  'generation.succeeded',
  'generation.failed',
  'generation.canceled',
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

export const LIMITS = {
  promptChars: 10_000,
  userChars: 256,
  maxImages: 4,
  maxSeed: 2 ** 32 - 1,
  minOutputTtl: 60,
  maxOutputTtl: 7 * 24 * 3600,
  defaultOutputTtl: 3600,
  /** Decoded bytes of an image-to-image input. */
  maxInputImageBytes: 10 * 1024 * 1024,
  /** Whole request body (the image is base64 inside it). */
  maxBodyBytes: 15 * 1024 * 1024,
  maxWaitSeconds: 60,
} as const;

const multipleOf16 = z.number().int().positive().multipleOf(16, { message: 'must be a multiple of 16' });

export const GenerationRequestSchema = z
  .strictObject({
    prompt: z.string().min(1, { message: 'must not be empty' }).max(LIMITS.promptChars),
    negative_prompt: z.string().max(LIMITS.promptChars).optional(),
    model: z
      .string()
      .min(1)
      .max(100)
      .optional()
      .describe("Model id from GET /v1/models; the deployment's default when absent"),
    width: multipleOf16.optional(),
    height: multipleOf16.optional(),
    aspect_ratio: z.enum(Object.keys(ASPECT_RATIOS) as [AspectRatio, ...AspectRatio[]]).optional(),
    steps: z.number().int().min(1).optional(),
    guidance_scale: z.number().min(0).max(30).optional(),
    seed: z
      .number()
      .int()
      .min(0)
      .max(LIMITS.maxSeed)
      .optional()
      .describe('Random when absent; always echoed'),
    n: z.number().int().min(1).max(LIMITS.maxImages).optional(),
    output_format: z.enum(OUTPUT_FORMATS).optional(),
    output_quality: z.number().int().min(1).max(100).optional(),
    image: z
      .string()
      .min(1)
      .optional()
      .describe('Image-to-image input: base64 or a data: URL (PNG, JPEG or WebP)'),
    strength: z.number().min(0).max(1).optional(),
    // Checked raw first: the URL parser silently drops CR/LF/tab, so the stored URL would differ
    // from the one sent. Credentials would be echoed in job views and refused at delivery anyway.
    webhook_url: z
      .string()
      .max(2048)
      // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it refuses
      .refine((v) => !/[\s\u0000-\u001f\u007f-\u009f]/.test(v), {
        message: 'must not contain whitespace or control characters',
      })
      .url({ protocol: /^https?$/ })
      .refine((v) => !URL.canParse(v) || (new URL(v).username === '' && new URL(v).password === ''), {
        message: 'must not contain credentials (user:password@)',
      })
      .optional(),
    webhook_events: z.array(z.enum(EVENT_TYPES)).min(1).optional(),
    user: z.string().min(1).max(LIMITS.userChars).optional().describe('Your end-user id, for usage reports'),
    output_ttl_seconds: z.number().int().min(LIMITS.minOutputTtl).max(LIMITS.maxOutputTtl).optional(),
    dry_run: z.boolean().optional().describe('true: answer 200 with the price quote and create nothing'),
    previews: z
      .boolean()
      .optional()
      .describe(
        "true: a small live preview of the image in progress every few steps (generation.preview events and the job's `preview`)",
      ),
  })
  .superRefine((r, ctx) => {
    if (r.aspect_ratio && (r.width !== undefined || r.height !== undefined)) {
      ctx.addIssue({
        code: 'custom',
        path: ['aspect_ratio'],
        message: 'give either aspect_ratio or width/height, not both',
      });
    }
    if ((r.width === undefined) !== (r.height === undefined)) {
      ctx.addIssue({
        code: 'custom',
        path: [r.width === undefined ? 'width' : 'height'],
        message: 'width and height go together',
      });
    }
    if (r.strength !== undefined && r.image === undefined) {
      ctx.addIssue({ code: 'custom', path: ['strength'], message: 'needs image' });
    }
  })
  .meta({ id: 'GenerationRequest' });
export type GenerationRequest = z.infer<typeof GenerationRequestSchema>;

/** What a deployment serves: GET /v1/models, and the limits requests are checked against. */
export const ModelInfoSchema = z
  .object({
    id: z.string(),
    object: z.literal('model'),
    description: z.string(),
    default: z.boolean(),
    native_size: z.number().int().describe('width = height of the default image'),
    max_megapixels: z.number(),
    max_steps: z.number().int(),
    default_steps: z.number().int(),
    default_guidance_scale: z.number(),
    output_formats: z.array(z.enum(OUTPUT_FORMATS)),
    price: ModelPriceSchema.optional().describe('Absent: generations on this model are free'),
  })
  .meta({ id: 'Model' });
export type ModelInfo = z.infer<typeof ModelInfoSchema>;

/** Parameters after defaults and model limits: what the runner executes and the job echoes. */
export const NormalizedParamsSchema = z
  .object({
    prompt: z.string(),
    negative_prompt: z.string(),
    width: z.number().int(),
    height: z.number().int(),
    steps: z.number().int(),
    guidance_scale: z.number(),
    seed: z.number().int(),
    n: z.number().int(),
    output_format: z.enum(OUTPUT_FORMATS),
    output_quality: z.number().int(),
    strength: z.number().nullable(),
    output_ttl_seconds: z.number().int(),
    /** Absent on jobs created before previews existed: no previews. */
    previews: z.boolean().optional(),
  })
  .meta({ id: 'GenerationParams' });
export type NormalizedParams = z.infer<typeof NormalizedParamsSchema>;

export interface FieldError {
  field: string;
  message: string;
}

/**
 * Applies defaults and the model's limits. Returns field errors instead of throwing so the edge
 * can answer one problem+json listing every bad field.
 */
export function normalizeRequest(
  req: GenerationRequest,
  model: ModelInfo,
  randomSeed: () => number,
): { params: NormalizedParams; errors: FieldError[] } {
  const errors: FieldError[] = [];
  let width: number;
  let height: number;
  if (req.aspect_ratio) {
    const [w, h] = ASPECT_RATIOS[req.aspect_ratio];
    const scale = model.native_size / 1024;
    width = Math.max(16, Math.round((w * scale) / 16) * 16);
    height = Math.max(16, Math.round((h * scale) / 16) * 16);
  } else {
    width = req.width ?? model.native_size;
    height = req.height ?? model.native_size;
  }
  const megapixels = (width * height) / 1e6;
  if (megapixels > model.max_megapixels) {
    errors.push({
      field: req.aspect_ratio ? 'aspect_ratio' : 'width',
      message: `${width}x${height} is ${megapixels.toFixed(2)} MP, more than ${model.id}'s limit of ${model.max_megapixels} MP`,
    });
  }
  const steps = req.steps ?? model.default_steps;
  if (steps > model.max_steps)
    errors.push({ field: 'steps', message: `must be at most ${model.max_steps} for ${model.id}` });
  const format = req.output_format ?? 'png';
  if (!model.output_formats.includes(format)) {
    errors.push({ field: 'output_format', message: `${model.id} does not produce ${format}` });
  }
  return {
    errors,
    params: {
      prompt: req.prompt,
      negative_prompt: req.negative_prompt ?? '',
      width,
      height,
      steps,
      guidance_scale: req.guidance_scale ?? model.default_guidance_scale,
      seed: req.seed ?? randomSeed(),
      n: req.n ?? 1,
      output_format: format,
      output_quality: req.output_quality ?? 90,
      strength: req.image !== undefined ? (req.strength ?? 0.6) : null,
      output_ttl_seconds: req.output_ttl_seconds ?? LIMITS.defaultOutputTtl,
      previews: req.previews === true,
    },
  };
}
