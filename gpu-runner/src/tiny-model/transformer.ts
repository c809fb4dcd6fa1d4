/**
 * Tiny SD3 transformer graph with the I/O of optimum's `sd3-transformer-2d` export. Every element of
 * `out_hidden_states` depends on all four inputs.
 */
import { type EncodedModel, GraphBuilder, type TinyDtype } from './onnx-graph.js';

export type TransformerKind = 'mixing' | 'linear';

/** Coefficients of the 'linear' transformer: out = a·x + beta (see buildTransformer). */
export interface LinearTransformerCoefficients {
  a: number;
  k: number[];
  m: number[];
  g: number[];
}

export interface TransformerGraphOptions {
  dtype: TinyDtype;
  seed: number;
  kind: TransformerKind;
  channels: number;
  jointAttentionDim: number;
  pooledDim: number;
  /**
   * [height, width] in latent pixels: the graph adds a positional embedding of exactly that size,
   * like an export traced with static shapes, so any other latent size fails inside onnxruntime
   * (a broadcast error) while the declared I/O stays dynamic. 'mixing' kind only.
   */
  staticLatentSize?: readonly [number, number];
}

export interface BuiltTransformer {
  encoded: EncodedModel;
  /** The coefficients as the graph computes with them (rounded to float16 for fp16 models). */
  linear?: LinearTransformerCoefficients;
}

/** Width of the sinusoidal timestep features of the 'mixing' kind. */
const TIME_FEATURES = 16;

/**
 * 'mixing': out = Conv3x3(x) + cond[:, :, None, None] with
 *   cond = tanh(mean_seq(enc) We)·se + tanh(pooled Wp)·sp + sin(t/1000 · f + phi) Wt.
 * 'linear': out = a·x + beta, beta[b,c] = k_c·mean_{s,j}(enc[b]) + m_c·mean_j(pooled[b]) + g_c·t[b]/1000,
 *   simple enough for a test to compute sampled latents in closed form.
 */
export function buildTransformer(o: TransformerGraphOptions): BuiltTransformer {
  const g = new GraphBuilder(o.dtype, o.seed, `transformer.${o.kind}`);
  const C = o.channels;
  const x = g.input('hidden_states', 'float', ['batch_size', C, 'height', 'width']);
  const enc = g.input('encoder_hidden_states', 'float', [
    'batch_size',
    'sequence_length',
    o.jointAttentionDim,
  ]);
  const pooled = g.input('pooled_projections', 'float', ['batch_size', o.pooledDim]);
  const t = g.input('timestep', 'float', ['step']);
  const tCol = g.op('Unsqueeze', [t, g.ints('axes_1', [1])]);
  const spatial = g.ints('axes_2_3', [2, 3]);
  const dims = ['batch_size', C, 'height', 'width'];
  if (o.staticLatentSize && o.kind !== 'mixing') {
    throw new Error(`tiny-model transformer: staticLatentSize needs the 'mixing' kind, not '${o.kind}'`);
  }

  if (o.kind === 'linear') {
    const aValues = g.randomValues('a', [], 0.8, 1.2);
    const kValues = g.randomValues('k', [C], -1, 1);
    const mValues = g.randomValues('m', [C], -1, 1);
    const gValues = g.randomValues('g', [C], -1, 1);
    const a = g.param('a', [], aValues);
    const k = g.param('k', [C], kValues);
    const m = g.param('m', [C], mValues);
    const gv = g.param('g', [C], gValues);
    const encMean = g.op('ReduceMean', [enc], { axes: { ints: [1, 2] }, keepdims: { i: 0 } });
    const pooledMean = g.op('ReduceMean', [pooled], { axes: { ints: [1] }, keepdims: { i: 1 } });
    const encCol = g.op('Unsqueeze', [encMean, g.ints('axes_1b', [1])]);
    const tScaled = g.op('Div', [tCol, g.scalar('thousand', 1000)]);
    const beta = g.op('Add', [
      g.op('Add', [g.op('Mul', [encCol, k]), g.op('Mul', [pooledMean, m])]),
      g.op('Mul', [tScaled, gv]),
    ]);
    const out = g.op('Add', [g.op('Mul', [x, a]), g.op('Unsqueeze', [beta, spatial])]);
    g.output('out_hidden_states', out, dims);
    const list = (v: Float32Array): number[] => Array.from(g.stored(v));
    return {
      encoded: g.encode('transformer', true),
      linear: { a: list(aValues)[0]!, k: list(kValues), m: list(mValues), g: list(gValues) },
    };
  }

  const convBound = Math.sqrt(3 / (9 * C));
  const [posH, posW] = o.staticLatentSize ?? [0, 0];
  const convIn = o.staticLatentSize
    ? g.op('Add', [x, g.random('pos_embed', [1, C, posH, posW], -0.05, 0.05)])
    : x;
  const conv = g.op(
    'Conv',
    [
      convIn,
      g.random('conv.weight', [C, C, 3, 3], -convBound, convBound),
      g.random('conv.bias', [C], -0.1, 0.1),
    ],
    { kernel_shape: { ints: [3, 3] }, pads: { ints: [1, 1, 1, 1] } },
  );
  const J = o.jointAttentionDim;
  const P = o.pooledDim;
  const encMean = g.op('ReduceMean', [enc], { axes: { ints: [1] }, keepdims: { i: 0 } });
  const encTerm = g.op('Mul', [
    g.op('Tanh', [
      g.op('MatMul', [encMean, g.random('enc.weight', [J, C], -Math.sqrt(3 / J), Math.sqrt(3 / J))]),
    ]),
    g.random('enc.gain', [C], 0.1, 0.3),
  ]);
  const pooledTerm = g.op('Mul', [
    g.op('Tanh', [
      g.op('MatMul', [pooled, g.random('pooled.weight', [P, C], -Math.sqrt(3 / P), Math.sqrt(3 / P))]),
    ]),
    g.random('pooled.gain', [C], 0.1, 0.3),
  ]);
  // Frequencies are pre-divided by 1000 so timesteps in [0, 1000] span a few radians.
  const freq = g.random('time.freq', [TIME_FEATURES], 0.5e-3, 6e-3);
  const phase = g.random('time.phase', [TIME_FEATURES], -Math.PI, Math.PI);
  const timeFeat = g.op('Sin', [g.op('Add', [g.op('Mul', [tCol, freq]), phase])]);
  const timeBound = 0.5 * Math.sqrt(3 / TIME_FEATURES);
  const timeTerm = g.op('MatMul', [
    timeFeat,
    g.random('time.weight', [TIME_FEATURES, C], -timeBound, timeBound),
  ]);
  const cond = g.op('Add', [g.op('Add', [encTerm, pooledTerm]), timeTerm]);
  const out = g.op('Add', [conv, g.op('Unsqueeze', [cond, spatial])]);
  g.output('out_hidden_states', out, dims);
  return { encoded: g.encode('transformer', true) };
}
