/**
 * Reads the configs of an optimum SD3 ONNX export folder (sd3-pipeline.md §4.1). Every size the
 * pipeline uses comes from here or from the ONNX metadata, so SD3 Medium, SD3.5 Medium and SD3.5
 * Large folders all load.
 */
import { access, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { PipelineError } from '../errors.js';

const positiveInt = z.number().int().positive();

const clipConfigSchema = z.object({
  hidden_size: positiveInt,
  num_hidden_layers: positiveInt,
  projection_dim: positiveInt,
});
const t5ConfigSchema = z.object({ d_model: positiveInt });
const transformerConfigSchema = z.object({
  sample_size: positiveInt,
  patch_size: positiveInt,
  in_channels: positiveInt,
  out_channels: positiveInt.optional(),
  joint_attention_dim: positiveInt,
  pooled_projection_dim: positiveInt,
  pos_embed_max_size: positiveInt.optional(),
});
const vaeConfigSchema = z.object({
  latent_channels: positiveInt,
  block_out_channels: z.array(positiveInt).min(1),
  scaling_factor: z.number().positive(),
  shift_factor: z.number().nullable().optional(),
});
const schedulerConfigSchema = z.object({
  num_train_timesteps: positiveInt.default(1000),
  shift: z.number().positive().default(1),
  use_dynamic_shifting: z.boolean().default(false),
});
const modelIndexSchema = z.record(z.string(), z.unknown());

export interface ClipEncoderConfig {
  hiddenSize: number;
  numLayers: number;
  projectionDim: number;
}

export interface Sd3ModelConfig {
  dir: string;
  clipL: ClipEncoderConfig;
  clipG: ClipEncoderConfig;
  /** null when the folder has no T5 encoder (its part of the embedding is then zeros). */
  t5: { dModel: number } | null;
  transformer: {
    sampleSize: number;
    patchSize: number;
    inChannels: number;
    outChannels: number;
    jointAttentionDim: number;
    pooledProjectionDim: number;
    /** Largest latent height/width the position embedding covers (pos_embed_max_size * patch_size). */
    maxLatentSize: number | null;
  };
  vae: { latentChannels: number; scaleFactor: number; scalingFactor: number; shiftFactor: number };
  scheduler: { numTrainTimesteps: number; shift: number };
}

export const SUBMODEL_FOLDERS = [
  'text_encoder',
  'text_encoder_2',
  'text_encoder_3',
  'transformer',
  'vae_encoder',
  'vae_decoder',
] as const;
export type SubmodelFolder = (typeof SUBMODEL_FOLDERS)[number];

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

async function readJson<T>(path: string, schema: z.ZodType<T>): Promise<T> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    throw new PipelineError('model_invalid', `missing file ${path}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new PipelineError('model_invalid', `${path} is not valid JSON: ${(err as Error).message}`);
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    throw new PipelineError('model_invalid', `${path} has unexpected content: ${issues}`);
  }
  return parsed.data;
}

/** Whether the folder carries a T5 encoder: model_index.json may list it as [null, null]. */
function indexHasT5(index: Record<string, unknown>): boolean {
  const entry = index['text_encoder_3'];
  return !(Array.isArray(entry) && entry.every((v) => v === null));
}

export interface ReadModelConfigOptions {
  /** false ignores text_encoder_3 even when present (its part is zeros, as in diffusers). */
  t5?: boolean;
}

export async function readModelConfig(
  dir: string,
  options: ReadModelConfigOptions = {},
): Promise<Sd3ModelConfig> {
  if (!(await exists(dir))) throw new PipelineError('model_invalid', `model folder ${dir} does not exist`);
  const index = await readJson(join(dir, 'model_index.json'), modelIndexSchema);
  const scheduler = await readJson(join(dir, 'scheduler', 'scheduler_config.json'), schedulerConfigSchema);
  if (scheduler.use_dynamic_shifting) {
    throw new PipelineError(
      'model_invalid',
      `${join(dir, 'scheduler', 'scheduler_config.json')}: use_dynamic_shifting is not supported by SD3 pipelines`,
    );
  }
  const clipL = await readJson(join(dir, 'text_encoder', 'config.json'), clipConfigSchema);
  const clipG = await readJson(join(dir, 'text_encoder_2', 'config.json'), clipConfigSchema);
  const wantT5 = options.t5 !== false && indexHasT5(index);
  const t5 = wantT5 ? await readJson(join(dir, 'text_encoder_3', 'config.json'), t5ConfigSchema) : null;
  const transformer = await readJson(join(dir, 'transformer', 'config.json'), transformerConfigSchema);
  // optimum writes the full VAE config into both halves; the decoder's is authoritative for decoding.
  const vae = await readJson(join(dir, 'vae_decoder', 'config.json'), vaeConfigSchema);
  await readJson(join(dir, 'vae_encoder', 'config.json'), vaeConfigSchema);

  const config: Sd3ModelConfig = {
    dir,
    clipL: {
      hiddenSize: clipL.hidden_size,
      numLayers: clipL.num_hidden_layers,
      projectionDim: clipL.projection_dim,
    },
    clipG: {
      hiddenSize: clipG.hidden_size,
      numLayers: clipG.num_hidden_layers,
      projectionDim: clipG.projection_dim,
    },
    t5: t5 ? { dModel: t5.d_model } : null,
    transformer: {
      sampleSize: transformer.sample_size,
      patchSize: transformer.patch_size,
      inChannels: transformer.in_channels,
      outChannels: transformer.out_channels ?? transformer.in_channels,
      jointAttentionDim: transformer.joint_attention_dim,
      pooledProjectionDim: transformer.pooled_projection_dim,
      maxLatentSize: transformer.pos_embed_max_size
        ? transformer.pos_embed_max_size * transformer.patch_size
        : null,
    },
    vae: {
      latentChannels: vae.latent_channels,
      scaleFactor: 2 ** (vae.block_out_channels.length - 1),
      scalingFactor: vae.scaling_factor,
      shiftFactor: vae.shift_factor ?? 0,
    },
    scheduler: { numTrainTimesteps: scheduler.num_train_timesteps, shift: scheduler.shift },
  };
  checkConsistency(config);
  return config;
}

function checkConsistency(c: Sd3ModelConfig): void {
  const fail = (msg: string) => {
    throw new PipelineError('model_invalid', `${c.dir}: ${msg}`);
  };
  const clipWidth = c.clipL.hiddenSize + c.clipG.hiddenSize;
  if (clipWidth > c.transformer.jointAttentionDim) {
    fail(
      `CLIP hidden sizes ${c.clipL.hiddenSize} + ${c.clipG.hiddenSize} exceed the transformer's joint_attention_dim ${c.transformer.jointAttentionDim}`,
    );
  }
  const pooled = c.clipL.projectionDim + c.clipG.projectionDim;
  if (pooled !== c.transformer.pooledProjectionDim) {
    fail(
      `CLIP projection dims ${c.clipL.projectionDim} + ${c.clipG.projectionDim} do not add up to the transformer's pooled_projection_dim ${c.transformer.pooledProjectionDim}`,
    );
  }
  if (c.t5 && c.t5.dModel !== c.transformer.jointAttentionDim) {
    fail(
      `T5 d_model ${c.t5.dModel} differs from the transformer's joint_attention_dim ${c.transformer.jointAttentionDim}`,
    );
  }
  if (
    c.transformer.inChannels !== c.vae.latentChannels ||
    c.transformer.outChannels !== c.vae.latentChannels
  ) {
    fail(
      `transformer channels ${c.transformer.inChannels}/${c.transformer.outChannels} differ from the VAE's latent_channels ${c.vae.latentChannels}`,
    );
  }
}
