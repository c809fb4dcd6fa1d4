/** The JSON configs of a tiny folder, with the keys of the real SD3 Medium files (sd3-pipeline.md 1.1). */
import type { TinyDtype } from './onnx-graph.js';
import type { TinyModelSizes } from './sizes.js';

const DIFFUSERS_VERSION = '0.31.0';
type Json = Record<string, unknown>;

function torchDtype(dtype: TinyDtype): string {
  return dtype === 'fp16' ? 'float16' : 'float32';
}

export function modelIndexConfig(withT5: boolean): Json {
  const clip = ['transformers', 'CLIPTextModelWithProjection'];
  const clipTokenizer = ['transformers', 'CLIPTokenizer'];
  return {
    _class_name: 'StableDiffusion3Pipeline',
    _diffusers_version: DIFFUSERS_VERSION,
    scheduler: ['diffusers', 'FlowMatchEulerDiscreteScheduler'],
    text_encoder: clip,
    text_encoder_2: clip,
    text_encoder_3: withT5 ? ['transformers', 'T5EncoderModel'] : [null, null],
    tokenizer: clipTokenizer,
    tokenizer_2: clipTokenizer,
    tokenizer_3: withT5 ? ['transformers', 'T5TokenizerFast'] : [null, null],
    transformer: ['diffusers', 'SD3Transformer2DModel'],
    vae: ['diffusers', 'AutoencoderKL'],
  };
}

export function schedulerConfig(): Json {
  return {
    _class_name: 'FlowMatchEulerDiscreteScheduler',
    _diffusers_version: DIFFUSERS_VERSION,
    num_train_timesteps: 1000,
    shift: 3.0,
  };
}

export function clipConfig(which: 'L' | 'G', s: TinyModelSizes, dtype: TinyDtype): Json {
  const L = which === 'L';
  return {
    architectures: ['CLIPTextModelWithProjection'],
    model_type: 'clip_text_model',
    hidden_size: L ? s.clipLHidden : s.clipGHidden,
    intermediate_size: L ? s.clipLIntermediate : s.clipGIntermediate,
    num_hidden_layers: L ? s.clipLLayers : s.clipGLayers,
    num_attention_heads: L ? s.clipLHeads : s.clipGHeads,
    projection_dim: L ? s.clipLProjection : s.clipGProjection,
    max_position_embeddings: s.clipMaxPositions,
    vocab_size: 49408,
    bos_token_id: 0,
    eos_token_id: 2,
    pad_token_id: 1,
    hidden_act: L ? 'quick_gelu' : 'gelu',
    layer_norm_eps: 1e-5,
    torch_dtype: torchDtype(dtype),
  };
}

export function t5Config(s: TinyModelSizes, dtype: TinyDtype): Json {
  return {
    architectures: ['T5EncoderModel'],
    model_type: 't5',
    d_model: s.t5Hidden,
    num_layers: s.t5Layers,
    num_heads: s.t5Heads,
    d_kv: s.t5KvDim,
    d_ff: s.t5FeedForward,
    feed_forward_proj: 'gated-gelu',
    vocab_size: 32128,
    pad_token_id: 0,
    eos_token_id: 1,
    decoder_start_token_id: 0,
    torch_dtype: torchDtype(dtype),
  };
}

export function transformerConfig(s: TinyModelSizes): Json {
  return {
    _class_name: 'SD3Transformer2DModel',
    _diffusers_version: DIFFUSERS_VERSION,
    sample_size: s.sampleSize,
    patch_size: 2,
    in_channels: s.latentChannels,
    out_channels: s.latentChannels,
    num_layers: s.transformerLayers,
    attention_head_dim: s.transformerHeadDim,
    num_attention_heads: s.transformerHeads,
    joint_attention_dim: s.jointAttentionDim,
    caption_projection_dim: s.captionProjectionDim,
    pooled_projection_dim: s.clipLProjection + s.clipGProjection,
    pos_embed_max_size: s.posEmbedMaxSize,
  };
}

export function vaeConfig(s: TinyModelSizes): Json {
  return {
    _class_name: 'AutoencoderKL',
    _diffusers_version: DIFFUSERS_VERSION,
    in_channels: 3,
    out_channels: 3,
    latent_channels: s.latentChannels,
    block_out_channels: [...s.vaeBlockOutChannels],
    down_block_types: Array(4).fill('DownEncoderBlock2D'),
    up_block_types: Array(4).fill('UpDecoderBlock2D'),
    layers_per_block: 2,
    act_fn: 'silu',
    norm_num_groups: 32,
    scaling_factor: 1.5305,
    shift_factor: 0.0609,
    use_quant_conv: false,
    use_post_quant_conv: false,
    force_upcast: true,
    mid_block_add_attention: true,
    sample_size: s.vaeSampleSize,
  };
}
