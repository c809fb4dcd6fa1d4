/**
 * Tiny CLIP and T5 text encoder graphs with the I/O of optimum's `clip-text-with-projection` and
 * `t5-encoder` exports. Every layer mixes over the sequence (unmasked), so pad tokens influence every
 * position as in the real encoders, and CLIP pools at argmax(input_ids) as real CLIP does.
 */
import { ELEM_FLOAT, type EncodedModel, GraphBuilder, type TinyDtype } from './onnx-graph.js';

export type TinyCost = 'tiny' | 'zero';

const BATCH = 'batch_size';
const SEQ = 'sequence_length';

export interface ClipGraphOptions {
  dtype: TinyDtype;
  seed: number;
  cost: TinyCost;
  /** Names the PRNG streams ('text_encoder' / 'text_encoder_2'). */
  stream: string;
  hidden: number;
  layers: number;
  projection: number;
  maxPositions: number;
}

export interface T5GraphOptions {
  dtype: TinyDtype;
  seed: number;
  cost: TinyCost;
  hidden: number;
  layers: number;
}

/** sin(id · w + b): a deterministic token embedding without a vocabulary-sized table. */
function tokenEmbedding(g: GraphBuilder, ids: string, width: number): string {
  const idsF = g.op('Cast', [ids], { to: { i: ELEM_FLOAT } });
  const col = g.op('Unsqueeze', [idsF, g.ints('axes_2', [2])]);
  const w = g.random('token.freq', [width], 0.5, 1.5);
  const b = g.random('token.phase', [width], -Math.PI, Math.PI);
  return g.op('Sin', [g.op('Add', [g.op('Mul', [col, w]), b])]);
}

/**
 * One encoder layer: h + tanh(LN(h) W + b) + mean_seq(LN(h)) M, or for cost 'zero' the elementwise
 * h + a + mean_seq(a)·c with a = tanh(h·w + b). The sequence mean is taken of bounded values, so the
 * hidden state grows at most linearly with depth and stays finite in fp16 even at 32 layers.
 */
function encoderLayer(g: GraphBuilder, h: string, width: number, index: number, cost: TinyCost): string {
  const p = `layer${index}`;
  const seqMean = (x: string) => g.op('ReduceMean', [x], { axes: { ints: [1] }, keepdims: { i: 1 } });
  if (cost === 'zero') {
    const w = g.random(`${p}.w`, [width], -1, 1);
    const b = g.random(`${p}.b`, [width], -0.5, 0.5);
    const c = g.random(`${p}.mix`, [width], -0.5, 0.5);
    const act = g.op('Tanh', [g.op('Add', [g.op('Mul', [h, w]), b])]);
    return g.op('Add', [g.op('Add', [h, act]), g.op('Mul', [seqMean(act), c])]);
  }
  const bound = Math.sqrt(3 / width);
  const lnScale = g.random(`${p}.ln.scale`, [width], 0.8, 1.2);
  const lnBias = g.random(`${p}.ln.bias`, [width], -0.1, 0.1);
  const w = g.random(`${p}.w`, [width, width], -bound, bound);
  const b = g.random(`${p}.b`, [width], -0.1, 0.1);
  const m = g.random(`${p}.mix`, [width, width], -0.5 * bound, 0.5 * bound);
  const ln = g.op('LayerNormalization', [h, lnScale, lnBias], { axis: { i: -1 }, epsilon: { f: 1e-5 } });
  const act = g.op('Tanh', [g.op('Add', [g.op('MatMul', [ln, w]), b])]);
  return g.op('Add', [g.op('Add', [h, act]), g.op('MatMul', [seqMean(ln), m])]);
}

function finalNorm(g: GraphBuilder, h: string, width: number): string {
  const scale = g.random('final_ln.scale', [width], 0.8, 1.2);
  const bias = g.random('final_ln.bias', [width], -0.1, 0.1);
  return g.op('LayerNormalization', [h, scale, bias], { axis: { i: -1 }, epsilon: { f: 1e-5 } });
}

export function buildClipTextEncoder(o: ClipGraphOptions): EncodedModel {
  const g = new GraphBuilder(o.dtype, o.seed, o.stream);
  const H = o.hidden;
  const ids = g.input('input_ids', 'int64', [BATCH, SEQ]);

  // Learned-position-like table of max_position_embeddings rows, sliced to the sequence length, so a
  // sequence longer than CLIP's 77 positions fails as it would with the real model.
  const posTable = g.random('position_table', [o.maxPositions, H], -0.5, 0.5);
  const seqLen = g.op('Shape', [ids], { start: { i: 1 }, end: { i: 2 } });
  const pos = g.op('Slice', [posTable, g.ints('zero_1d', [0]), seqLen, g.ints('axes_0', [0])]);
  let h = g.op('Add', [tokenEmbedding(g, ids, H), pos]);
  const hidden: string[] = [h];
  for (let i = 0; i < o.layers; i++) {
    h = encoderLayer(g, h, H, i, o.cost);
    hidden.push(h);
  }
  const last = finalNorm(g, h, H);

  // Pool at the first position of the largest token id (the EOS token in CLIP's vocabulary).
  const idsF = g.op('Cast', [ids], { to: { i: ELEM_FLOAT } });
  const eosPos = g.op('ArgMax', [idsF], { axis: { i: 1 }, keepdims: { i: 1 } });
  const pooled = g.op('GatherND', [last, eosPos], { batch_dims: { i: 1 } });
  let textEmbeds: string;
  if (o.cost === 'zero') {
    textEmbeds = g.op('Mul', [pooled, g.random('text_projection', [H], -1, 1)]);
  } else {
    const bound = Math.sqrt(3 / H);
    textEmbeds = g.op('MatMul', [pooled, g.random('text_projection', [H, o.projection], -bound, bound)]);
  }

  g.output('text_embeds', textEmbeds, [BATCH, o.projection]);
  g.output('last_hidden_state', last, [BATCH, SEQ, H]);
  hidden.forEach((value, i) => {
    g.output(`hidden_states.${i}`, value, [BATCH, SEQ, H]);
  });
  return g.encode(o.stream, false);
}

export function buildT5Encoder(o: T5GraphOptions): EncodedModel {
  const g = new GraphBuilder(o.dtype, o.seed, 'text_encoder_3');
  const D = o.hidden;
  const ids = g.input('input_ids', 'int64', [BATCH, SEQ]);

  // T5 has relative positions and no length limit, so positions are a sinusoid of 0..seq-1.
  const seqLen = g.op('Gather', [g.op('Shape', [ids]), g.ints('index_1', [1], [])], { axis: { i: 0 } });
  const limit = g.op('Cast', [seqLen], { to: { i: ELEM_FLOAT } });
  const range = g.op('Range', [g.scalar('range.start', 0), limit, g.scalar('range.delta', 1)]);
  const posCol = g.op('Unsqueeze', [range, g.ints('axes_1', [1])]);
  const posW = g.random('position.freq', [D], 0.05, 1);
  const posB = g.random('position.phase', [D], -Math.PI, Math.PI);
  const pos = g.op('Mul', [
    g.op('Sin', [g.op('Add', [g.op('Mul', [posCol, posW]), posB])]),
    g.scalar('position.gain', 0.5),
  ]);

  let h = g.op('Add', [tokenEmbedding(g, ids, D), pos]);
  for (let i = 0; i < o.layers; i++) h = encoderLayer(g, h, D, i, o.cost);
  g.output('last_hidden_state', finalNorm(g, h, D), [BATCH, SEQ, D]);
  return g.encode('text_encoder_3', true);
}
