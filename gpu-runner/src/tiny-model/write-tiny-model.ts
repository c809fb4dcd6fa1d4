/**
 * Writes a tiny model folder laid out exactly like an optimum ONNX export of SD3 (sd3-pipeline.md 4.1),
 * so tests and benchmarks exercise the real loading code without multi-GB weights.
 */
import { randomBytes } from 'node:crypto';
import type { Dirent, Stats } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PipelineError } from '../errors.js';
import { buildManifest, MANIFEST_NAME } from '../models/manifest.js';
import {
  clipConfig,
  modelIndexConfig,
  schedulerConfig,
  t5Config,
  transformerConfig,
  vaeConfig,
} from './configs.js';
import { type EncodedModel, EXTERNAL_DATA_FILE, type TinyDtype } from './onnx-graph.js';
import { resolveSizes, type TinyModelSizes } from './sizes.js';
import { buildClipTextEncoder, buildT5Encoder, type TinyCost } from './text-encoders.js';
import { buildTransformer, type LinearTransformerCoefficients, type TransformerKind } from './transformer.js';
import { buildVaeDecoder, buildVaeEncoder } from './vae.js';

export interface TinyModelOptions {
  /** Float I/O and weight type; input_ids are int64 either way. Default 'fp32'. */
  dtype?: TinyDtype;
  /** Seeds every weight; the same options give byte-identical folders. */
  seed?: number;
  /** Default 'mixing'; 'linear' gives a transformer whose sampled latents have a closed form. */
  transformerKind?: TransformerKind;
  /**
   * 'tiny' (default): small matrix-multiply layers. 'zero': elementwise layers and projections, so a
   * folder with the real SD3 widths stays small on disk and cheap to run while keeping real I/O shapes.
   */
  cost?: TinyCost;
  /** Default true; false writes text_encoder_3/tokenizer_3 as [null, null] and no T5 folders. */
  withT5?: boolean;
  /** Overrides of TINY_MODEL_DEFAULT_SIZES (e.g. SD3_MEDIUM_SIZES with cost 'zero'). */
  sizes?: Partial<TinyModelSizes>;
  /**
   * [height, width] in latent pixels (image side / 8): the transformer then only runs at that size,
   * like an export with static shapes; jobs of any other size fail inside onnxruntime on every
   * attempt. For fault tests ('mixing' transformer only).
   */
  staticLatentSize?: readonly [number, number];
  /** Also write manifest.json (paths, sizes, SHA-256), as `sd3 models push` does. Default false. */
  manifest?: boolean;
}

export interface TinyModelInfo {
  /** Absolute path of the written folder. */
  dir: string;
  dtype: TinyDtype;
  seed: number;
  transformerKind: TransformerKind;
  cost: TinyCost;
  withT5: boolean;
  sizes: TinyModelSizes;
  /** Only for transformerKind 'linear': out = a·x + beta, beta[b,c] = k_c·mean(enc[b]) + m_c·mean(pooled[b]) + g_c·t[b]/1000. */
  linear?: LinearTransformerCoefficients;
}

export const TINY_MODEL_DEFAULT_SEED = 20240612;

const TOKENIZER_ASSETS = new URL('../../assets/sd3-tokenizers/', import.meta.url);

interface ResolvedOptions {
  dtype: TinyDtype;
  seed: number;
  transformerKind: TransformerKind;
  cost: TinyCost;
  withT5: boolean;
  sizes: TinyModelSizes;
  staticLatentSize: readonly [number, number] | undefined;
  manifest: boolean;
}

function oneOf<T extends string>(field: string, value: unknown, allowed: readonly T[], fallback: T): T {
  if (value === undefined) return fallback;
  if (typeof value === 'string' && (allowed as readonly string[]).includes(value)) return value as T;
  throw new PipelineError(
    'input_invalid',
    `tiny-model options.${field}: expected one of ${allowed.join(', ')}, found ${JSON.stringify(value)}`,
  );
}

function resolveOptions(options: TinyModelOptions): ResolvedOptions {
  const dtype = oneOf('dtype', options.dtype, ['fp32', 'fp16'], 'fp32');
  const transformerKind = oneOf('transformerKind', options.transformerKind, ['mixing', 'linear'], 'mixing');
  const cost = oneOf('cost', options.cost, ['tiny', 'zero'], 'tiny');
  const seed = options.seed ?? TINY_MODEL_DEFAULT_SEED;
  if (!Number.isSafeInteger(seed) || seed < 0) {
    throw new PipelineError(
      'input_invalid',
      `tiny-model options.seed: expected a non-negative integer, found ${seed}`,
    );
  }
  const withT5 = options.withT5 ?? true;
  if (typeof withT5 !== 'boolean') {
    throw new PipelineError(
      'input_invalid',
      `tiny-model options.withT5: expected a boolean, found ${JSON.stringify(withT5)}`,
    );
  }
  const sizes = resolveSizes(options.sizes ?? {}, { withT5, cost });
  const staticLatentSize = options.staticLatentSize;
  if (staticLatentSize !== undefined) {
    if (
      !Array.isArray(staticLatentSize) ||
      staticLatentSize.length !== 2 ||
      !staticLatentSize.every((v) => Number.isSafeInteger(v) && v >= 1)
    ) {
      throw new PipelineError(
        'input_invalid',
        `tiny-model options.staticLatentSize: expected [height, width] in latent pixels (positive integers), found ${JSON.stringify(staticLatentSize)}`,
      );
    }
    if (transformerKind !== 'mixing') {
      throw new PipelineError(
        'input_invalid',
        `tiny-model options.staticLatentSize: needs transformerKind 'mixing', found '${transformerKind}'`,
      );
    }
  }
  const manifest = options.manifest ?? false;
  if (typeof manifest !== 'boolean') {
    throw new PipelineError(
      'input_invalid',
      `tiny-model options.manifest: expected a boolean, found ${JSON.stringify(manifest)}`,
    );
  }
  return { dtype, seed, transformerKind, cost, withT5, sizes, staticLatentSize, manifest };
}

async function writeJson(file: string, value: unknown): Promise<void> {
  await fs.writeFile(file, `${JSON.stringify(value, null, 2)}\n`);
}

async function writeOnnxFolder(dir: string, encoded: EncodedModel, config: unknown): Promise<void> {
  await fs.mkdir(dir);
  await fs.writeFile(path.join(dir, 'model.onnx'), encoded.model);
  if (encoded.data) await fs.writeFile(path.join(dir, EXTERNAL_DATA_FILE), encoded.data);
  await writeJson(path.join(dir, 'config.json'), config);
}

async function copyTokenizer(name: string, dest: string): Promise<void> {
  const src = fileURLToPath(new URL(`${name}/`, TOKENIZER_ASSETS));
  let entries: Dirent[];
  try {
    entries = await fs.readdir(src, { withFileTypes: true });
  } catch (err) {
    throw new PipelineError('internal', `tiny-model: cannot read the tokenizer assets folder ${src}`, {
      cause: err,
    });
  }
  await fs.mkdir(dest);
  for (const entry of entries) {
    if (entry.isFile()) await fs.copyFile(path.join(src, entry.name), path.join(dest, entry.name));
  }
}

/** Refuses an existing target that is not an empty folder; returns whether an empty one exists. */
async function checkTarget(target: string): Promise<boolean> {
  let stat: Stats;
  try {
    stat = await fs.stat(target);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
  if (!stat.isDirectory()) {
    throw new PipelineError('input_invalid', `tiny-model output ${target}: exists and is not a folder`);
  }
  if ((await fs.readdir(target)).length > 0) {
    throw new PipelineError('input_invalid', `tiny-model output ${target}: folder exists and is not empty`);
  }
  return true;
}

async function writeContents(
  dir: string,
  o: ResolvedOptions,
): Promise<LinearTransformerCoefficients | undefined> {
  const { dtype, seed, cost, sizes: s } = o;
  await writeJson(path.join(dir, 'model_index.json'), modelIndexConfig(o.withT5));
  await fs.mkdir(path.join(dir, 'scheduler'));
  await writeJson(path.join(dir, 'scheduler', 'scheduler_config.json'), schedulerConfig());
  for (const name of o.withT5 ? ['tokenizer', 'tokenizer_2', 'tokenizer_3'] : ['tokenizer', 'tokenizer_2']) {
    await copyTokenizer(name, path.join(dir, name));
  }

  const clipBase = { dtype, seed, cost, maxPositions: s.clipMaxPositions };
  await writeOnnxFolder(
    path.join(dir, 'text_encoder'),
    buildClipTextEncoder({
      ...clipBase,
      stream: 'text_encoder',
      hidden: s.clipLHidden,
      layers: s.clipLLayers,
      projection: s.clipLProjection,
    }),
    clipConfig('L', s, dtype),
  );
  await writeOnnxFolder(
    path.join(dir, 'text_encoder_2'),
    buildClipTextEncoder({
      ...clipBase,
      stream: 'text_encoder_2',
      hidden: s.clipGHidden,
      layers: s.clipGLayers,
      projection: s.clipGProjection,
    }),
    clipConfig('G', s, dtype),
  );
  if (o.withT5) {
    await writeOnnxFolder(
      path.join(dir, 'text_encoder_3'),
      buildT5Encoder({ dtype, seed, cost, hidden: s.t5Hidden, layers: s.t5Layers }),
      t5Config(s, dtype),
    );
  }

  const transformer = buildTransformer({
    dtype,
    seed,
    kind: o.transformerKind,
    channels: s.latentChannels,
    jointAttentionDim: s.jointAttentionDim,
    pooledDim: s.clipLProjection + s.clipGProjection,
    ...(o.staticLatentSize ? { staticLatentSize: o.staticLatentSize } : {}),
  });
  await writeOnnxFolder(path.join(dir, 'transformer'), transformer.encoded, transformerConfig(s));

  const vae = { dtype, seed, latentChannels: s.latentChannels };
  await writeOnnxFolder(path.join(dir, 'vae_encoder'), buildVaeEncoder(vae), vaeConfig(s));
  await writeOnnxFolder(path.join(dir, 'vae_decoder'), buildVaeDecoder(vae), vaeConfig(s));
  if (o.manifest) {
    // Last, over everything above, as sd3 models push writes it.
    await writeJson(path.join(dir, MANIFEST_NAME), await buildManifest(dir));
  }
  return transformer.linear;
}

/**
 * Writes the folder atomically: builds it in a sibling temp folder and renames it into place; refuses
 * (PipelineError 'input_invalid') if outDir exists and is not empty; on failure removes the temp folder
 * so nothing half-written remains.
 */
export async function writeTinyModel(outDir: string, options: TinyModelOptions = {}): Promise<TinyModelInfo> {
  const o = resolveOptions(options);
  const target = path.resolve(outDir);
  await checkTarget(target);
  const parent = path.dirname(target);
  await fs.mkdir(parent, { recursive: true });
  const temp = path.join(
    parent,
    `.${path.basename(target)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`,
  );
  await fs.mkdir(temp);
  try {
    const linear = await writeContents(temp, o);
    // Check again right before the rename: another writer may have filled the target meanwhile.
    if (await checkTarget(target)) await fs.rmdir(target);
    await fs.rename(temp, target);
    const info: TinyModelInfo = {
      dir: target,
      dtype: o.dtype,
      seed: o.seed,
      transformerKind: o.transformerKind,
      cost: o.cost,
      withT5: o.withT5,
      sizes: o.sizes,
    };
    if (linear) info.linear = linear;
    return info;
  } catch (err) {
    await fs.rm(temp, { recursive: true, force: true });
    throw err;
  }
}
