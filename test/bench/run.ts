/**
 * `npm run bench [pipeline|noise|api]`: the figures the issues ask for, measured in one run on
 * this machine. Timings are reported, never asserted.
 * The mixed-workload load test and the memory soak are their own commands: `npm run bench:load`
 * and `npm run bench:soak` (test/bench/load.ts, soak.ts; `-- --help` lists their flags).
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type LoadResult, measureApi } from './api-throughput.js';
import { measurePreviewCost } from './latent-preview.js';
import { measureNoise, measureTokenizers } from './noise-and-tokenizer.js';
import { measureHostOverhead } from './pipeline-host-overhead.js';

const cache = join(fileURLToPath(new URL('../../', import.meta.url)), '.tmp', 'bench-models');
const fmt = (ms: number) => `${ms.toFixed(1)} ms`;
const only = process.argv.slice(2);
const want = (section: string) => only.length === 0 || only.includes(section);

console.log('# sd3-serverless benchmarks\n');

if (want('pipeline')) {
  console.log(
    '## Pipeline host-side overhead per image (SD3 Medium shapes: 1024x1024, 28 steps, CFG; best of 5)',
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
}

if (want('previews')) {
  console.log('\n## Live previews at 1024x1024 (latents 16x128x128, 28 steps; median of 30)');
  console.log('| dtype | map (worker) | JPEG (main thread) | bytes | previews/job | worker ms per step |');
  console.log('|---|---|---|---|---|---|');
  for (const dtype of ['fp16', 'fp32'] as const) {
    const r = await measurePreviewCost(dtype);
    console.log(
      `| ${dtype} | ${fmt(r.mapMs)} | ${fmt(r.encodeMs)} | ${r.bytes} | ${r.previewsPerJob} | ${r.mapMsPerStep.toFixed(2)} ms |`,
    );
  }
}

if (want('noise')) {
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
}

if (want('api')) {
  const api = await measureApi(Number(process.env['BENCH_SECONDS'] ?? 10));
  const row = (name: string, r: LoadResult) =>
    `| ${name} | ${r.requestsPerSecond.toFixed(0)} | ${r.p50Ms} ms | ${r.p99Ms} ms | ${r.errors} | ${r.non2xx} |`;
  console.log('\n## API on the local stack vs a bare Hono app (same run, autocannon in-process)');
  console.log('| route | req/s | p50 | p99 | errors | non-2xx |');
  console.log('|---|---|---|---|---|---|');
  console.log(row('POST /v1/generations (edge, 10 conns)', api.create));
  console.log(row('POST bare Hono (10 conns)', api.bareCreate));
  console.log(row('GET /v1/generations/{id}, finished job (edge, 20 conns)', api.get));
  console.log(row('GET bare Hono (20 conns)', api.bareGet));
  const ratio = (a: LoadResult, b: LoadResult) => (a.requestsPerSecond / b.requestsPerSecond).toFixed(3);
  console.log(
    `- ratios to bare Hono: create ${ratio(api.create, api.bareCreate)}, GET ${ratio(api.get, api.bareGet)}`,
  );
  const s = api.submitToStart;
  console.log(
    `- submit-to-start with an idle runner (${s.samples} jobs): p50 ${s.p50Ms} ms, p95 ${s.p95Ms} ms (target p95 <= 250 ms)`,
  );
}
