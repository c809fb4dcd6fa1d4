/**
 * `npm run bench`: prints the figures the issues ask for, measured in one run on this machine.
 * Timings are reported, never asserted.
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { measureNoise, measureTokenizers } from './noise-and-tokenizer.js';
import { measureHostOverhead } from './pipeline-host-overhead.js';

const cache = join(fileURLToPath(new URL('../../', import.meta.url)), '.tmp', 'bench-models');
const fmt = (ms: number) => `${ms.toFixed(1)} ms`;

console.log('# sd3-serverless benchmarks\n');
console.log(
  '## Pipeline host-side overhead per image (SD3 Medium shapes: 1024x1024, 28 steps, CFG; best of 3)',
);
console.log(
  '| dtype | total | model sessions (run) | host-side (target <= 60 ms) | of which elementwise graphs | PNG | JPEG | WebP |',
);
console.log('|---|---|---|---|---|---|---|---|');
for (const dtype of ['fp16', 'fp32'] as const) {
  const r = await measureHostOverhead(cache, dtype);
  console.log(
    `| ${dtype} | ${fmt(r.totalMs)} | ${fmt(r.modelRunMs)} | ${fmt(r.hostMs)} | ${fmt(r.elementwiseMs)} | ${fmt(r.imageEncodeMs.png)} | ${fmt(r.imageEncodeMs.jpeg)} | ${fmt(r.imageEncodeMs.webp)} |`,
  );
}
console.log('\n## Seeded noise (torch.randn exact), one 1x16x128x128 draw');
for (const dtype of ['float32', 'float16'] as const) {
  const r = measureNoise(dtype);
  console.log(
    `- ${dtype}: ${(r.normalsPerSecond / 1e6).toFixed(1)} M normals/s (${fmt(r.msPer1024Latent)} per draw)`,
  );
}
const tok = await measureTokenizers();
console.log(`\n## Tokenization (CLIP-L + CLIP-G + T5, ${tok.prompts} distinct 19-word prompts)`);
console.log(`- ${(tok.msPerPrompt * 1000).toFixed(0)} µs per prompt`);
