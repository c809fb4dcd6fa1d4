/**
 * Prompt encoding as diffusers' StableDiffusion3Pipeline.encode_prompt (sd3-pipeline.md §2.2):
 * penultimate CLIP hidden states (or clip_skip), pooled text_embeds, CLIP-L|CLIP-G concatenated
 * on features and zero-padded to joint_attention_dim, then T5 (or zeros) on the sequence axis.
 */
import type { Sd3Model } from '../model/sd3-model.js';
import type { OnnxModel } from '../runtime/onnx-backend.js';
import type { BufferPool } from '../tensor/buffer-pool.js';
import { int64Tensor, tensorValues } from '../tensor/host-tensor.js';
import type { Sd3Tokenizers } from './tokenizers/index.js';

/** One prompt's conditioning for a single batch row. */
export interface PromptConditioning {
  /** [seqLen, jointDim] */
  embeds: Float32Array;
  /** [pooledDim] */
  pooled: Float32Array;
  seqLen: number;
}

async function runClip(
  model: OnnxModel,
  ids: readonly number[],
  layers: number,
  clipSkip: number | null,
): Promise<{ hidden: Float32Array; pooled: Float32Array }> {
  // hidden_states has layers + 1 entries; diffusers takes [-2] or [-(clip_skip + 2)].
  const index = layers - 1 - (clipSkip ?? 0);
  const hiddenName = `hidden_states.${index}`;
  const out = await model.run({ input_ids: int64Tensor(ids, [1, ids.length]) }, ['text_embeds', hiddenName]);
  return { hidden: tensorValues(out[hiddenName]!), pooled: tensorValues(out['text_embeds']!) };
}

export async function encodePrompt(
  model: Sd3Model,
  tokenizers: Sd3Tokenizers,
  prompt: string,
  options: { clipSkip: number | null; maxSequenceLength: number },
): Promise<PromptConditioning> {
  const { clipL: l, clipG: g, transformer } = model.config;
  const joint = transformer.jointAttentionDim;
  const ids = tokenizers.tokenize(prompt, { maxSequenceLength: options.maxSequenceLength });
  const clipLen = ids.clipL.length;
  const [lOut, gOut] = [
    await runClip(model.clipL, ids.clipL, l.numLayers, options.clipSkip),
    await runClip(model.clipG, ids.clipG, g.numLayers, options.clipSkip),
  ];
  const t5Len = options.maxSequenceLength;
  const seqLen = clipLen + t5Len;
  const embeds = new Float32Array(seqLen * joint);
  for (let s = 0; s < clipLen; s++) {
    embeds.set(lOut.hidden.subarray(s * l.hiddenSize, (s + 1) * l.hiddenSize), s * joint);
    embeds.set(gOut.hidden.subarray(s * g.hiddenSize, (s + 1) * g.hiddenSize), s * joint + l.hiddenSize);
  }
  if (model.t5) {
    const out = await model.t5.run({ input_ids: int64Tensor(ids.t5, [1, ids.t5.length]) }, [
      'last_hidden_state',
    ]);
    embeds.set(tensorValues(out['last_hidden_state']!), clipLen * joint);
  }
  const pooled = new Float32Array(l.projectionDim + g.projectionDim);
  pooled.set(lOut.pooled, 0);
  pooled.set(gOut.pooled, l.projectionDim);
  return { embeds, pooled, seqLen };
}

/**
 * Stacks conditioning rows into one batch: each entry repeated `repeat` times consecutively, as
 * num_images_per_prompt does, and entries in order (CFG: [negative; positive]).
 */
export function stackConditioning(
  entries: readonly PromptConditioning[],
  repeat: number,
  pool?: BufferPool,
): { embeds: Float32Array; pooled: Float32Array; batch: number; seqLen: number } {
  const first = entries[0]!;
  const batch = entries.length * repeat;
  const embeds =
    pool?.float32('embeds', batch * first.embeds.length) ?? new Float32Array(batch * first.embeds.length);
  const pooled =
    pool?.float32('pooled', batch * first.pooled.length) ?? new Float32Array(batch * first.pooled.length);
  let row = 0;
  for (const e of entries) {
    for (let r = 0; r < repeat; r++, row++) {
      embeds.set(e.embeds, row * first.embeds.length);
      pooled.set(e.pooled, row * first.pooled.length);
    }
  }
  return { embeds, pooled, batch, seqLen: first.seqLen };
}
