/**
 * Tiny VAE encoder/decoder graphs with the I/O of optimum's `vae-encoder` / `vae-decoder` exports
 * (downscale 8). Patch convolutions of kernel 8 / stride 8 give each output image block a texture.
 */
import { type EncodedModel, GraphBuilder, type TinyDtype } from './onnx-graph.js';

export interface VaeGraphOptions {
  dtype: TinyDtype;
  seed: number;
  latentChannels: number;
}

/** `latent_parameters` = concat(mean, logvar) with logvar kept in [-6, -1], so sampling noise matters. */
export function buildVaeEncoder(o: VaeGraphOptions): EncodedModel {
  const g = new GraphBuilder(o.dtype, o.seed, 'vae_encoder');
  const L = o.latentChannels;
  const x = g.input('sample', 'float', ['batch_size', 3, 'sample_height', 'sample_width']);
  const bound = 2 * Math.sqrt(3 / (3 * 64));
  const conv = g.op(
    'Conv',
    [
      x,
      g.random('patch.weight', [2 * L, 3, 8, 8], -bound, bound),
      g.random('patch.bias', [2 * L], -0.2, 0.2),
    ],
    { kernel_shape: { ints: [8, 8] }, strides: { ints: [8, 8] } },
  );
  const [mean, raw] = g.opN('Split', [conv], 2, { axis: { i: 1 } });
  const logvar = g.op('Add', [
    g.op('Mul', [g.op('Tanh', [raw!]), g.scalar('logvar.half_range', 2.5)]),
    g.scalar('logvar.center', -3.5),
  ]);
  const params = g.op('Concat', [mean!, logvar], { axis: { i: 1 } });
  g.output('latent_parameters', params, ['batch_size', 2 * L, 'sample_height / 8', 'sample_width / 8']);
  return g.encode('vae_encoder', false);
}

/** `sample` = tanh(ConvTranspose8x8/8(latent)), in [-1, 1]. */
export function buildVaeDecoder(o: VaeGraphOptions): EncodedModel {
  const g = new GraphBuilder(o.dtype, o.seed, 'vae_decoder');
  const L = o.latentChannels;
  const z = g.input('latent_sample', 'float', ['batch_size', L, 'latent_height', 'latent_width']);
  const bound = Math.sqrt(3 / L);
  const up = g.op(
    'ConvTranspose',
    [z, g.random('patch.weight', [L, 3, 8, 8], -bound, bound), g.random('patch.bias', [3], -0.2, 0.2)],
    { kernel_shape: { ints: [8, 8] }, strides: { ints: [8, 8] } },
  );
  g.output('sample', g.op('Tanh', [up]), ['batch_size', 3, 'latent_height * 8', 'latent_width * 8']);
  return g.encode('vae_decoder', false);
}
