import { PipelineError } from '../errors.js';

/**
 * Widths and counts of a tiny SD3 folder. The fields marked "config only" are written to config.json
 * but do not shape any graph (the tiny graphs have no attention heads, feed-forward blocks or patches).
 */
export interface TinyModelSizes {
  /** CLIP-L hidden width (shape of `last_hidden_state` / `hidden_states.*`). */
  clipLHidden: number;
  /** CLIP-L layer count (`hidden_states.0` … `hidden_states.N`). */
  clipLLayers: number;
  /** CLIP-L `projection_dim` (width of `text_embeds`); follows clipLHidden when not given. */
  clipLProjection: number;
  /** Config only. */
  clipLHeads: number;
  /** Config only; follows 4 × clipLHidden when not given. */
  clipLIntermediate: number;
  clipGHidden: number;
  clipGLayers: number;
  /** Follows clipGHidden when not given. */
  clipGProjection: number;
  /** Config only. */
  clipGHeads: number;
  /** Config only; follows 4 × clipGHidden when not given. */
  clipGIntermediate: number;
  /** CLIP `max_position_embeddings`: the longest token sequence the CLIP graphs accept. */
  clipMaxPositions: number;
  /** T5 `d_model` (width of its `last_hidden_state`); follows jointAttentionDim when only that is given. */
  t5Hidden: number;
  t5Layers: number;
  /** Config only. */
  t5Heads: number;
  /** Config only; follows t5Hidden / t5Heads when not given. */
  t5KvDim: number;
  /** Config only; follows 2.5 × t5Hidden when not given. */
  t5FeedForward: number;
  /** Transformer `joint_attention_dim` (width of `encoder_hidden_states`); follows t5Hidden when not given. */
  jointAttentionDim: number;
  /** Latent channels of the transformer and the VAE. */
  latentChannels: number;
  /** Transformer `sample_size` in latent pixels (default image side = 8 × this). */
  sampleSize: number;
  /** Config only. */
  transformerLayers: number;
  /** Config only. */
  transformerHeads: number;
  /** Config only. */
  transformerHeadDim: number;
  /** Config only; follows transformerHeads × transformerHeadDim when not given. */
  captionProjectionDim: number;
  /** Config only (in patches). */
  posEmbedMaxSize: number;
  /** VAE `block_out_channels`; four entries, i.e. a downscale of 8 (config only otherwise). */
  vaeBlockOutChannels: [number, number, number, number];
  /** VAE `sample_size` in image pixels; follows 8 × sampleSize when not given. */
  vaeSampleSize: number;
}

export const TINY_MODEL_DEFAULT_SIZES: TinyModelSizes = Object.freeze({
  clipLHidden: 32,
  clipLLayers: 3,
  clipLProjection: 32,
  clipLHeads: 2,
  clipLIntermediate: 128,
  clipGHidden: 48,
  clipGLayers: 4,
  clipGProjection: 48,
  clipGHeads: 2,
  clipGIntermediate: 192,
  clipMaxPositions: 77,
  t5Hidden: 96,
  t5Layers: 2,
  t5Heads: 2,
  t5KvDim: 48,
  t5FeedForward: 240,
  jointAttentionDim: 96,
  latentChannels: 16,
  sampleSize: 8,
  transformerLayers: 2,
  transformerHeads: 2,
  transformerHeadDim: 8,
  captionProjectionDim: 16,
  posEmbedMaxSize: 32,
  vaeBlockOutChannels: Object.freeze([8, 16, 32, 32]) as [number, number, number, number],
  vaeSampleSize: 64,
});

/** The widths of SD3 Medium (sd3-pipeline.md 1.1), for real-shaped benchmark folders (use cost 'zero'). */
export const SD3_MEDIUM_SIZES: TinyModelSizes = Object.freeze({
  clipLHidden: 768,
  clipLLayers: 12,
  clipLProjection: 768,
  clipLHeads: 12,
  clipLIntermediate: 3072,
  clipGHidden: 1280,
  clipGLayers: 32,
  clipGProjection: 1280,
  clipGHeads: 20,
  clipGIntermediate: 5120,
  clipMaxPositions: 77,
  t5Hidden: 4096,
  t5Layers: 24,
  t5Heads: 64,
  t5KvDim: 64,
  t5FeedForward: 10240,
  jointAttentionDim: 4096,
  latentChannels: 16,
  sampleSize: 128,
  transformerLayers: 24,
  transformerHeads: 24,
  transformerHeadDim: 64,
  captionProjectionDim: 1536,
  posEmbedMaxSize: 192,
  vaeBlockOutChannels: Object.freeze([128, 256, 512, 512]) as [number, number, number, number],
  vaeSampleSize: 1024,
});

export interface SizeRequirements {
  withT5: boolean;
  cost: 'tiny' | 'zero';
}

function invalid(message: string): PipelineError {
  return new PipelineError('input_invalid', `tiny-model options.sizes: ${message}`);
}

/**
 * Fills the sizes not given: a derived field follows its base when the base was given (e.g. a bigger
 * clipLHidden also widens clipLProjection), otherwise it takes the default. Then checks consistency.
 */
export function resolveSizes(partial: Partial<TinyModelSizes>, req: SizeRequirements): TinyModelSizes {
  const d = TINY_MODEL_DEFAULT_SIZES;
  const p = partial;
  for (const [key, value] of Object.entries(p)) {
    if (!(key in d)) throw invalid(`unknown field ${key}`);
    if (value === undefined) continue;
    const values = Array.isArray(value) ? value : [value];
    for (const v of values) {
      if (!Number.isSafeInteger(v) || (v as number) < 1) {
        throw invalid(`${key} must be a positive integer, found ${JSON.stringify(value)}`);
      }
    }
  }
  const pick = <K extends keyof TinyModelSizes>(
    key: K,
    derived?: () => TinyModelSizes[K] | undefined,
  ): TinyModelSizes[K] => p[key] ?? derived?.() ?? d[key];

  const clipLHidden = pick('clipLHidden');
  const clipGHidden = pick('clipGHidden');
  const t5Hidden = pick('t5Hidden', () => p.jointAttentionDim);
  const t5Heads = pick('t5Heads');
  const transformerHeads = pick('transformerHeads');
  const transformerHeadDim = pick('transformerHeadDim');
  const sampleSize = pick('sampleSize');
  const vaeBlockOutChannels = pick('vaeBlockOutChannels');
  const sizes: TinyModelSizes = {
    clipLHidden,
    clipLLayers: pick('clipLLayers'),
    clipLProjection: pick('clipLProjection', () => (p.clipLHidden === undefined ? undefined : clipLHidden)),
    clipLHeads: pick('clipLHeads'),
    clipLIntermediate: pick('clipLIntermediate', () =>
      p.clipLHidden === undefined ? undefined : 4 * clipLHidden,
    ),
    clipGHidden,
    clipGLayers: pick('clipGLayers'),
    clipGProjection: pick('clipGProjection', () => (p.clipGHidden === undefined ? undefined : clipGHidden)),
    clipGHeads: pick('clipGHeads'),
    clipGIntermediate: pick('clipGIntermediate', () =>
      p.clipGHidden === undefined ? undefined : 4 * clipGHidden,
    ),
    clipMaxPositions: pick('clipMaxPositions'),
    t5Hidden,
    t5Layers: pick('t5Layers'),
    t5Heads,
    t5KvDim: pick('t5KvDim', () =>
      p.t5Hidden === undefined && p.t5Heads === undefined && p.jointAttentionDim === undefined
        ? undefined
        : Math.max(1, Math.floor(t5Hidden / t5Heads)),
    ),
    t5FeedForward: pick('t5FeedForward', () =>
      p.t5Hidden === undefined && p.jointAttentionDim === undefined ? undefined : Math.round(2.5 * t5Hidden),
    ),
    jointAttentionDim: pick('jointAttentionDim', () => p.t5Hidden),
    latentChannels: pick('latentChannels'),
    sampleSize,
    transformerLayers: pick('transformerLayers'),
    transformerHeads,
    transformerHeadDim,
    captionProjectionDim: pick('captionProjectionDim', () =>
      p.transformerHeads === undefined && p.transformerHeadDim === undefined
        ? undefined
        : transformerHeads * transformerHeadDim,
    ),
    posEmbedMaxSize: pick('posEmbedMaxSize'),
    vaeBlockOutChannels: [...vaeBlockOutChannels],
    vaeSampleSize: pick('vaeSampleSize', () => (p.sampleSize === undefined ? undefined : 8 * sampleSize)),
  };

  if (sizes.vaeBlockOutChannels.length !== 4) {
    throw invalid(
      `vaeBlockOutChannels must have 4 entries (downscale 8), found ${sizes.vaeBlockOutChannels.length}`,
    );
  }
  const clipConcat = sizes.clipLHidden + sizes.clipGHidden;
  if (sizes.jointAttentionDim < clipConcat) {
    throw invalid(
      `jointAttentionDim ${sizes.jointAttentionDim} is narrower than the CLIP concat clipLHidden + clipGHidden = ${clipConcat}`,
    );
  }
  if (req.withT5 && sizes.t5Hidden !== sizes.jointAttentionDim) {
    throw invalid(`t5Hidden ${sizes.t5Hidden} must equal jointAttentionDim ${sizes.jointAttentionDim}`);
  }
  if (req.cost === 'zero') {
    // The zero-cost projection is elementwise, so it needs the projection as wide as the hidden state.
    if (sizes.clipLProjection !== sizes.clipLHidden || sizes.clipGProjection !== sizes.clipGHidden) {
      throw invalid(
        `cost 'zero' needs clipLProjection = clipLHidden and clipGProjection = clipGHidden, found ` +
          `${sizes.clipLProjection}/${sizes.clipLHidden} and ${sizes.clipGProjection}/${sizes.clipGHidden}`,
      );
    }
  }
  return sizes;
}
