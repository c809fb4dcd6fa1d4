/** Throughput of the torch-exact noise generator and the time per prompt of the three tokenizers. */
import { fileURLToPath } from 'node:url';
import { loadSd3Tokenizers, randn, TorchGenerator } from '@sd3/gpu-runner';

export function measureNoise(
  dtype: 'float32' | 'float16',
  repeats = 10,
): { normalsPerSecond: number; msPer1024Latent: number } {
  const shape = [1, 16, 128, 128];
  const n = 16 * 128 * 128;
  randn(new TorchGenerator(0), shape, dtype);
  let best = Number.POSITIVE_INFINITY;
  for (let r = 0; r < repeats; r++) {
    const g = new TorchGenerator(r);
    const t0 = performance.now();
    randn(g, shape, dtype);
    best = Math.min(best, performance.now() - t0);
  }
  return { normalsPerSecond: n / (best / 1000), msPer1024Latent: best };
}

export async function measureTokenizers(): Promise<{ msPerPrompt: number; prompts: number }> {
  const tokenizers = await loadSd3Tokenizers(
    fileURLToPath(new URL('../../gpu-runner/assets/sd3-tokenizers/', import.meta.url)),
  );
  const words =
    'a cinematic photo of a red fox sitting in tall grass under soft morning light with mountains far behind'.split(
      ' ',
    );
  const prompts = Array.from({ length: 500 }, (_, i) =>
    words.map((w, j) => (j === i % words.length ? `${w}${i}` : w)).join(' '),
  );
  for (const p of prompts.slice(0, 50)) tokenizers.tokenize(p);
  const t0 = performance.now();
  for (const p of prompts) tokenizers.tokenize(p);
  return { msPerPrompt: (performance.now() - t0) / prompts.length, prompts: prompts.length };
}
