/**
 * Prompt encoding as diffusers' StableDiffusion3Pipeline.encode_prompt (sd3-pipeline.md §2.2):
 * penultimate CLIP hidden states (or clip_skip), pooled text_embeds, CLIP-L|CLIP-G concatenated
 * on features and zero-padded to joint_attention_dim, then T5 (or zeros) on the sequence axis.
 */
import { inputDtype, type Sd3Model } from '../model/sd3-model.js';
import type { HostTensor, OnnxModel } from '../runtime/onnx-backend.js';
import type { BufferPool } from '../tensor/buffer-pool.js';
import { fromHalfBits, halfArrayToFloat32, toHalfBits } from '../tensor/float16.js';
import { type FloatDtype, int64Tensor } from '../tensor/host-tensor.js';
import type { Sd3Tokenizers } from './tokenizers/index.js';

/**
 * Conditioning values in the transformer's input dtype: Float32Array, or Uint16Array of half bits
 * for float16 models. Keeping half models' encoder outputs as bits avoids converting millions of
 * values to float32 and back per image.
 */
export type ConditioningData = Float32Array | Uint16Array;

/** One prompt's conditioning for a single batch row. */
export interface PromptConditioning {
  /** [seqLen, jointDim] */
  embeds: ConditioningData;
  /** [pooledDim] */
  pooled: ConditioningData;
  seqLen: number;
}

function allocate(dtype: FloatDtype, length: number): ConditioningData {
  return dtype === 'float16' ? new Uint16Array(length) : new Float32Array(length);
}

/** Copies src[start, end) into dst at offset, converting between float32 and half when they differ. */
function copyValues(
  dst: ConditioningData,
  offset: number,
  src: HostTensor,
  start: number,
  end: number,
): void {
  const data = src.data as ConditioningData;
  if ((src.dtype === 'float16') === dst instanceof Uint16Array) {
    // Same representation: a plain copy (typed-array set between the same element type).
    (dst as Float32Array).set((data as Float32Array).subarray(start, end), offset);
    return;
  }
  if (dst instanceof Uint16Array) {
    for (let i = start; i < end; i++) dst[offset + i - start] = toHalfBits((data as Float32Array)[i]!);
  } else {
    for (let i = start; i < end; i++) dst[offset + i - start] = fromHalfBits((data as Uint16Array)[i]!);
  }
}

async function runClip(
  model: OnnxModel,
  ids: readonly number[],
  layers: number,
  clipSkip: number | null,
): Promise<{ hidden: HostTensor; pooled: HostTensor }> {
  // hidden_states has layers + 1 entries; diffusers takes [-2] or [-(clip_skip + 2)].
  const index = layers - 1 - (clipSkip ?? 0);
  const hiddenName = `hidden_states.${index}`;
  const out = await model.run({ input_ids: int64Tensor(ids, [1, ids.length]) }, ['text_embeds', hiddenName]);
  return { hidden: out[hiddenName]!, pooled: out['text_embeds']! };
}

export async function encodePrompt(
  model: Sd3Model,
  tokenizers: Sd3Tokenizers,
  prompt: string,
  options: { clipSkip: number | null; maxSequenceLength: number },
): Promise<PromptConditioning> {
  const { clipL: l, clipG: g, transformer } = model.config;
  const joint = transformer.jointAttentionDim;
  const embedsType = inputDtype(model.transformer, 'encoder_hidden_states');
  const pooledType = inputDtype(model.transformer, 'pooled_projections');
  const ids = tokenizers.tokenize(prompt, { maxSequenceLength: options.maxSequenceLength });
  const clipLen = ids.clipL.length;
  const lOut = await runClip(model.clipL, ids.clipL, l.numLayers, options.clipSkip);
  const gOut = await runClip(model.clipG, ids.clipG, g.numLayers, options.clipSkip);
  const seqLen = clipLen + options.maxSequenceLength;
  // Zero-initialised: the padding after CLIP-G and, without T5, the whole T5 part (0 bits = +0).
  const embeds = allocate(embedsType, seqLen * joint);
  for (let s = 0; s < clipLen; s++) {
    copyValues(embeds, s * joint, lOut.hidden, s * l.hiddenSize, (s + 1) * l.hiddenSize);
    copyValues(embeds, s * joint + l.hiddenSize, gOut.hidden, s * g.hiddenSize, (s + 1) * g.hiddenSize);
  }
  if (model.t5) {
    const out = await model.t5.run({ input_ids: int64Tensor(ids.t5, [1, ids.t5.length]) }, [
      'last_hidden_state',
    ]);
    const t5 = out['last_hidden_state']!;
    copyValues(embeds, clipLen * joint, t5, 0, t5.data.length);
  }
  const pooled = allocate(pooledType, l.projectionDim + g.projectionDim);
  copyValues(pooled, 0, lOut.pooled, 0, l.projectionDim);
  copyValues(pooled, l.projectionDim, gOut.pooled, 0, g.projectionDim);
  return { embeds, pooled, seqLen };
}

/** Conditioning values as float32 numbers (for inspection and tests). */
export function conditioningValues(data: ConditioningData): Float32Array {
  return data instanceof Uint16Array ? halfArrayToFloat32(data) : data;
}

/**
 * Stacks conditioning rows into one batch: each entry repeated `repeat` times consecutively, as
 * num_images_per_prompt does, and entries in order (CFG: [negative; positive]).
 */
export function stackConditioning(
  entries: readonly PromptConditioning[],
  repeat: number,
  pool?: BufferPool,
): { embeds: ConditioningData; pooled: ConditioningData; batch: number; seqLen: number } {
  const first = entries[0]!;
  const batch = entries.length * repeat;
  const buffer = (key: string, like: ConditioningData, length: number): ConditioningData => {
    if (like instanceof Uint16Array) return pool?.uint16(key, length) ?? new Uint16Array(length);
    return pool?.float32(key, length) ?? new Float32Array(length);
  };
  const embeds = buffer('embeds', first.embeds, batch * first.embeds.length);
  const pooled = buffer('pooled', first.pooled, batch * first.pooled.length);
  let row = 0;
  for (const e of entries) {
    for (let r = 0; r < repeat; r++, row++) {
      (embeds as Float32Array).set(e.embeds as Float32Array, row * first.embeds.length);
      (pooled as Float32Array).set(e.pooled as Float32Array, row * first.pooled.length);
    }
  }
  return { embeds, pooled, batch, seqLen: first.seqLen };
}
