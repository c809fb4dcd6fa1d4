/**
 * Host-side cost of one SD3 Medium image outside onnxruntime: a model folder with the real SD3
 * Medium shapes (1024x1024, latents 16x128x128, 333x4096 conditioning, CLIP 768/1280 with all
 * hidden states, T5 4096) but near-zero-cost graphs, 28 steps with CFG. Everything the pipeline
 * does around session.run (tokenize, noise, conditioning assembly, per-step CFG + Euler, tensor
 * copies, fp16 conversion, post-processing) is what remains after subtracting the run time.
 */
import { mkdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { encodeOutputImage, SD3_MEDIUM_SIZES, Sd3Pipeline, writeTinyModel } from '@sd3/gpu-runner';

export interface HostOverheadResult {
  dtype: 'fp32' | 'fp16';
  totalMs: number;
  /** Inside the model sessions' run (text encoders, transformer, VAE), including their copies. */
  modelRunMs: number;
  /** Inside the pipeline's own elementwise graphs (float16 step math, post-processing). */
  elementwiseMs: number;
  /** Everything but modelRunMs: JavaScript plus the elementwise graphs. */
  hostMs: number;
  imageEncodeMs: { png: number; jpeg: number; webp: number };
}

async function modelDir(cache: string, dtype: 'fp32' | 'fp16'): Promise<string> {
  const dir = join(cache, `sd3-medium-shapes-${dtype}`);
  try {
    await stat(join(dir, 'model_index.json'));
    return dir;
  } catch {
    await rm(dir, { recursive: true, force: true });
    await mkdir(cache, { recursive: true });
    await writeTinyModel(dir, { dtype, cost: 'zero', transformerKind: 'linear', sizes: SD3_MEDIUM_SIZES });
    return dir;
  }
}

export async function measureHostOverhead(
  cache: string,
  dtype: 'fp32' | 'fp16',
  repeats = 5,
): Promise<HostOverheadResult> {
  const pipe = await Sd3Pipeline.load(await modelDir(cache, dtype), { provider: 'cpu' });
  const runMs = () => pipe.onnxStats().runMs;
  const graphMs = () => pipe.elementwiseStats().runMs;
  const params = {
    prompt: 'a photograph of an astronaut riding a horse on the moon, detailed, 35mm, golden hour light',
    width: 1024,
    height: 1024,
    steps: 28,
    guidanceScale: 7,
    seed: 42,
  };
  try {
    const warm = await pipe.generate(params); // warm-up: JIT, onnxruntime allocations
    let best: HostOverheadResult | null = null;
    for (let r = 0; r < repeats; r++) {
      const run0 = runMs();
      const graph0 = graphMs();
      const t0 = performance.now();
      await pipe.generate({ ...params, seed: 100 + r });
      const totalMs = performance.now() - t0;
      const elementwiseMs = graphMs() - graph0;
      // The pipeline's own elementwise graphs are host-side work too: only the model sessions
      // (encoders, transformer, VAE) are excluded.
      const modelRunMs = runMs() - run0 - elementwiseMs;
      const hostMs = totalMs - modelRunMs;
      if (!best || hostMs < best.hostMs) {
        best = {
          dtype,
          totalMs,
          modelRunMs,
          elementwiseMs,
          hostMs,
          imageEncodeMs: { png: 0, jpeg: 0, webp: 0 },
        };
      }
    }
    const image = warm.images[0]!;
    for (const format of ['png', 'jpeg', 'webp'] as const) {
      await encodeOutputImage(image, format);
      const t0 = performance.now();
      await encodeOutputImage(image, format, { metadata: { prompt: params.prompt, seed: 42 } });
      best!.imageEncodeMs[format] = performance.now() - t0;
    }
    return best!;
  } finally {
    await pipe.release();
  }
}
