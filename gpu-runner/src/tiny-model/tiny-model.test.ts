import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import onnxProto from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import { isPipelineError } from '../errors.js';
import { float32ToHalfArray, halfArrayToFloat32 } from '../tensor/float16.js';
import {
  SD3_MEDIUM_SIZES,
  TINY_MODEL_DEFAULT_SIZES,
  type TinyDtype,
  type TinyModelInfo,
  type TinyModelSizes,
  writeTinyModel,
} from './index.js';

const { onnx } = onnxProto;

let root = '';
before(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'tiny-model-test-'));
});
after(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

let dirCount = 0;
const freshDir = (label: string): string => path.join(root, `${label}-${dirCount++}`);

/** Deterministic test data in [lo, hi). */
function testValues(n: number, seed: number, lo: number, hi: number): Float32Array {
  const out = new Float32Array(n);
  let s = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out[i] = lo + ((s >>> 0) / 4294967296) * (hi - lo);
  }
  return out;
}

function floatTensor(dtype: TinyDtype, values: Float32Array, dims: number[]): ort.Tensor {
  return dtype === 'fp16'
    ? new ort.Tensor('float16', float32ToHalfArray(values), dims)
    : new ort.Tensor('float32', values, dims);
}

function idsTensor(ids: number[], dims: number[]): ort.Tensor {
  return new ort.Tensor(
    'int64',
    BigInt64Array.from(ids, (v) => BigInt(v)),
    dims,
  );
}

/** The float values of a float32/float16 output. */
function floats(t: ort.Tensor): Float32Array {
  if (t.type === 'float16') return halfArrayToFloat32(t.data as Uint16Array);
  assert.equal(t.type, 'float32');
  return t.data as Float32Array;
}

/** What the graph sees of `values` once fed in `dtype`. */
function asFed(dtype: TinyDtype, values: Float32Array): Float32Array {
  return dtype === 'fp16' ? halfArrayToFloat32(float32ToHalfArray(values)) : values;
}

function changedFraction(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let changed = 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) changed++;
  return changed / a.length;
}

async function openSession(dir: string, folder: string): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(path.join(dir, folder, 'model.onnx'), {
    executionProviders: ['cpu'],
    logSeverityLevel: 3,
  });
}

/** Token ids shaped like tokenizer output: BOS, content, EOS, then padding. */
function clipIds(rows: number[][], seq: number, pad: number): number[] {
  return rows.flatMap((content) => {
    const row = [49406, ...content, 49407];
    while (row.length < seq) row.push(pad);
    return row;
  });
}

function t5Ids(rows: number[][], seq: number): number[] {
  return rows.flatMap((content) => {
    const row = [...content, 1];
    while (row.length < seq) row.push(0);
    return row;
  });
}

interface InputCase {
  name: string;
  type: 'float32' | 'float16' | 'int64';
  shape: (number | string)[];
  /** variant 0 is the baseline; variant 1 differs in every value a test may perturb. */
  make: (variant: number) => ort.Tensor;
  /** Minimal fraction of output elements that must change when this input is perturbed. */
  minChanged: number;
}

interface OutputCase {
  name: string;
  shape: (number | string)[];
  dims: number[];
}

interface ModelCase {
  folder: string;
  inputs: InputCase[];
  outputs: OutputCase[];
}

const B = 2;
const CLIP_SEQ = 77;
const T5_SEQ = 24;
const LATENT_H = 8;
const LATENT_W = 6;

function modelCases(info: TinyModelInfo): ModelCase[] {
  const { dtype, sizes: s } = info;
  const ft = dtype === 'fp16' ? 'float16' : 'float32';
  const C = s.latentChannels;
  const pooled = s.clipLProjection + s.clipGProjection;
  const encSeq = CLIP_SEQ + T5_SEQ;
  const clip = (folder: string, H: number, P: number, layers: number, pad: number): ModelCase => ({
    folder,
    inputs: [
      {
        name: 'input_ids',
        type: 'int64',
        shape: ['batch_size', 'sequence_length'],
        make: (v) =>
          idsTensor(
            clipIds(
              v === 0
                ? [
                    [320, 1125, 539],
                    [3306, 525],
                  ]
                : [
                    [2368, 1929, 539],
                    [1151, 7510],
                  ],
              CLIP_SEQ,
              pad,
            ),
            [B, CLIP_SEQ],
          ),
        minChanged: 0.01,
      },
    ],
    outputs: [
      { name: 'text_embeds', shape: ['batch_size', P], dims: [B, P] },
      { name: 'last_hidden_state', shape: ['batch_size', 'sequence_length', H], dims: [B, CLIP_SEQ, H] },
      ...Array.from({ length: layers + 1 }, (_, i) => ({
        name: `hidden_states.${i}`,
        shape: ['batch_size', 'sequence_length', H],
        dims: [B, CLIP_SEQ, H],
      })),
    ],
  });
  const cases = [
    clip('text_encoder', s.clipLHidden, s.clipLProjection, s.clipLLayers, 49407),
    clip('text_encoder_2', s.clipGHidden, s.clipGProjection, s.clipGLayers, 0),
  ];
  if (info.withT5) {
    cases.push({
      folder: 'text_encoder_3',
      inputs: [
        {
          name: 'input_ids',
          type: 'int64',
          shape: ['batch_size', 'sequence_length'],
          make: (v) =>
            idsTensor(
              t5Ids(
                v === 0
                  ? [
                      [3, 9, 1712, 13],
                      [32099, 7],
                    ]
                  : [
                      [3, 9, 5022, 13],
                      [541, 7],
                    ],
                T5_SEQ,
              ),
              [B, T5_SEQ],
            ),
          minChanged: 0.5,
        },
      ],
      outputs: [
        {
          name: 'last_hidden_state',
          shape: ['batch_size', 'sequence_length', s.t5Hidden],
          dims: [B, T5_SEQ, s.t5Hidden],
        },
      ],
    });
  }
  const latentDims = [B, C, LATENT_H, LATENT_W];
  cases.push(
    {
      folder: 'transformer',
      inputs: [
        {
          name: 'hidden_states',
          type: ft,
          shape: ['batch_size', C, 'height', 'width'],
          make: (v) => floatTensor(dtype, testValues(B * C * LATENT_H * LATENT_W, 11 + v, -2, 2), latentDims),
          minChanged: 0.95,
        },
        {
          name: 'encoder_hidden_states',
          type: ft,
          shape: ['batch_size', 'sequence_length', s.jointAttentionDim],
          make: (v) =>
            floatTensor(dtype, testValues(B * encSeq * s.jointAttentionDim, 21 + v, -1.5, 1.5), [
              B,
              encSeq,
              s.jointAttentionDim,
            ]),
          minChanged: 0.95,
        },
        {
          name: 'pooled_projections',
          type: ft,
          shape: ['batch_size', pooled],
          make: (v) => floatTensor(dtype, testValues(B * pooled, 31 + v, -1.5, 1.5), [B, pooled]),
          minChanged: 0.95,
        },
        {
          name: 'timestep',
          type: ft,
          shape: ['step'],
          make: (v) => floatTensor(dtype, Float32Array.from(v === 0 ? [800, 300] : [600, 100]), [B]),
          minChanged: 0.95,
        },
      ],
      outputs: [{ name: 'out_hidden_states', shape: ['batch_size', C, 'height', 'width'], dims: latentDims }],
    },
    {
      folder: 'vae_encoder',
      inputs: [
        {
          name: 'sample',
          type: ft,
          shape: ['batch_size', 3, 'sample_height', 'sample_width'],
          make: (v) =>
            floatTensor(dtype, testValues(B * 3 * 64 * 48, 41 + v, -1, 1), [
              B,
              3,
              8 * LATENT_H,
              8 * LATENT_W,
            ]),
          minChanged: 0.95,
        },
      ],
      outputs: [
        {
          name: 'latent_parameters',
          shape: ['batch_size', 2 * C, 'sample_height / 8', 'sample_width / 8'],
          dims: [B, 2 * C, LATENT_H, LATENT_W],
        },
      ],
    },
    {
      folder: 'vae_decoder',
      inputs: [
        {
          name: 'latent_sample',
          type: ft,
          shape: ['batch_size', C, 'latent_height', 'latent_width'],
          make: (v) =>
            floatTensor(dtype, testValues(B * C * LATENT_H * LATENT_W, 51 + v, -1.5, 1.5), latentDims),
          minChanged: 0.95,
        },
      ],
      outputs: [
        {
          name: 'sample',
          shape: ['batch_size', 3, 'latent_height * 8', 'latent_width * 8'],
          dims: [B, 3, 8 * LATENT_H, 8 * LATENT_W],
        },
      ],
    },
  );
  return cases;
}

function feedsOf(c: ModelCase, perturbed?: string): Record<string, ort.Tensor> {
  return Object.fromEntries(c.inputs.map((i) => [i.name, i.make(i.name === perturbed ? 1 : 0)]));
}

/** Loads and runs every sub-model; checks names, metadata, shapes, dtypes and input sensitivity. */
async function checkSubModels(
  info: TinyModelInfo,
): Promise<Map<string, ort.InferenceSession.OnnxValueMapType>> {
  const ft = info.dtype === 'fp16' ? 'float16' : 'float32';
  const results = new Map<string, ort.InferenceSession.OnnxValueMapType>();
  for (const c of modelCases(info)) {
    const session = await openSession(info.dir, c.folder);
    try {
      assert.deepEqual(
        session.inputNames,
        c.inputs.map((i) => i.name),
        `${c.folder} input names`,
      );
      assert.deepEqual(
        session.outputNames,
        c.outputs.map((o) => o.name),
        `${c.folder} output names`,
      );
      assert.deepEqual(
        session.inputMetadata.map((m) =>
          m.isTensor ? { name: m.name, type: m.type, shape: [...m.shape] } : m,
        ),
        c.inputs.map((i) => ({ name: i.name, type: i.type, shape: i.shape })),
        `${c.folder} input metadata`,
      );
      assert.deepEqual(
        session.outputMetadata.map((m) =>
          m.isTensor ? { name: m.name, type: m.type, shape: [...m.shape] } : m,
        ),
        c.outputs.map((o) => ({ name: o.name, type: ft, shape: o.shape })),
        `${c.folder} output metadata`,
      );

      const base = await session.run(feedsOf(c));
      for (const o of c.outputs) {
        const t = base[o.name]!;
        assert.equal(t.type, ft, `${c.folder}.${o.name} dtype`);
        assert.deepEqual([...t.dims], o.dims, `${c.folder}.${o.name} dims`);
        assert.ok(
          floats(t).every((v) => Number.isFinite(v)),
          `${c.folder}.${o.name} is finite`,
        );
      }
      for (const input of c.inputs) {
        const perturbed = await session.run(feedsOf(c, input.name));
        for (const o of c.outputs) {
          const fraction = changedFraction(floats(base[o.name]!), floats(perturbed[o.name]!));
          assert.ok(
            fraction >= input.minChanged,
            `${c.folder}.${o.name} changed in ${fraction} of its elements when ${input.name} changed`,
          );
        }
      }
      results.set(c.folder, base);
    } finally {
      await session.release();
    }
  }
  return results;
}

/** Text encoders mix over the unmasked sequence: a token change reaches every other position. */
async function checkSequenceMixing(info: TinyModelInfo): Promise<void> {
  const encoders: [string, number, number][] = [
    ['text_encoder', 49407, info.sizes.clipLHidden],
    ['text_encoder_2', 0, info.sizes.clipGHidden],
  ];
  for (const [folder, pad, H] of encoders) {
    const session = await openSession(info.dir, folder);
    try {
      const a = await session.run({
        input_ids: idsTensor(clipIds([[320, 1125]], CLIP_SEQ, pad), [1, CLIP_SEQ]),
      });
      const b = await session.run({
        input_ids: idsTensor(clipIds([[4558, 1125]], CLIP_SEQ, pad), [1, CLIP_SEQ]),
      });
      const last = (CLIP_SEQ - 1) * H;
      const lastRow = (r: ort.InferenceSession.OnnxValueMapType) =>
        floats(r['last_hidden_state']!).subarray(last, last + H);
      assert.ok(
        changedFraction(lastRow(a), lastRow(b)) > 0.5,
        `${folder}: the last pad position ignores token 1`,
      );
      // hidden_states.0 is the embedding output: there a token change stays at its own position.
      const h0a = floats(a['hidden_states.0']!);
      const h0b = floats(b['hidden_states.0']!);
      for (let pos = 0; pos < CLIP_SEQ; pos++) {
        const changed = changedFraction(
          h0a.subarray(pos * H, (pos + 1) * H),
          h0b.subarray(pos * H, (pos + 1) * H),
        );
        assert.equal(changed > 0, pos === 1, `${folder} hidden_states.0 at position ${pos}`);
      }
      assert.ok(
        changedFraction(floats(a['text_embeds']!), floats(b['text_embeds']!)) > 0.5,
        `${folder} text_embeds`,
      );
    } finally {
      await session.release();
    }
  }
}

async function readJson(file: string): Promise<unknown> {
  return JSON.parse(await fs.readFile(file, 'utf8'));
}

function decodeModel(bytes: Uint8Array) {
  return onnx.ModelProto.decode(bytes);
}

async function checkFilesAndConfigs(info: TinyModelInfo): Promise<void> {
  const { dir, sizes: s } = info;
  const torchDtype = info.dtype === 'fp16' ? 'float16' : 'float32';
  const clipL = ['transformers', 'CLIPTextModelWithProjection'];
  assert.deepEqual(await readJson(path.join(dir, 'model_index.json')), {
    _class_name: 'StableDiffusion3Pipeline',
    _diffusers_version: '0.31.0',
    scheduler: ['diffusers', 'FlowMatchEulerDiscreteScheduler'],
    text_encoder: clipL,
    text_encoder_2: clipL,
    text_encoder_3: info.withT5 ? ['transformers', 'T5EncoderModel'] : [null, null],
    tokenizer: ['transformers', 'CLIPTokenizer'],
    tokenizer_2: ['transformers', 'CLIPTokenizer'],
    tokenizer_3: info.withT5 ? ['transformers', 'T5TokenizerFast'] : [null, null],
    transformer: ['diffusers', 'SD3Transformer2DModel'],
    vae: ['diffusers', 'AutoencoderKL'],
  });
  const scheduler = (await readJson(path.join(dir, 'scheduler', 'scheduler_config.json'))) as Record<
    string,
    unknown
  >;
  assert.equal(scheduler['_class_name'], 'FlowMatchEulerDiscreteScheduler');
  assert.equal(scheduler['num_train_timesteps'], 1000);
  assert.equal(scheduler['shift'], 3);

  const tokenizers = info.withT5 ? ['tokenizer', 'tokenizer_2', 'tokenizer_3'] : ['tokenizer', 'tokenizer_2'];
  for (const name of tokenizers) {
    const assets = new URL(`../../assets/sd3-tokenizers/${name}/`, import.meta.url);
    const expected = (await fs.readdir(assets)).sort();
    assert.deepEqual((await fs.readdir(path.join(dir, name))).sort(), expected, `${name} files`);
    for (const file of expected) {
      const a = await fs.readFile(new URL(file, assets));
      const b = await fs.readFile(path.join(dir, name, file));
      assert.ok(a.equals(b), `${name}/${file} is a copy`);
    }
  }
  assert.equal(existsSync(path.join(dir, 'tokenizer_3')), info.withT5);
  assert.equal(existsSync(path.join(dir, 'text_encoder_3')), info.withT5);

  const te = (await readJson(path.join(dir, 'text_encoder', 'config.json'))) as Record<string, unknown>;
  assert.deepEqual(
    [te['architectures'], te['model_type'], te['hidden_size'], te['num_hidden_layers'], te['projection_dim']],
    [['CLIPTextModelWithProjection'], 'clip_text_model', s.clipLHidden, s.clipLLayers, s.clipLProjection],
  );
  assert.deepEqual(
    [te['hidden_act'], te['eos_token_id'], te['pad_token_id'], te['vocab_size'], te['torch_dtype']],
    ['quick_gelu', 2, 1, 49408, torchDtype],
  );
  const te2 = (await readJson(path.join(dir, 'text_encoder_2', 'config.json'))) as Record<string, unknown>;
  assert.deepEqual(
    [te2['hidden_size'], te2['num_hidden_layers'], te2['projection_dim'], te2['hidden_act']],
    [s.clipGHidden, s.clipGLayers, s.clipGProjection, 'gelu'],
  );
  if (info.withT5) {
    const t5 = (await readJson(path.join(dir, 'text_encoder_3', 'config.json'))) as Record<string, unknown>;
    assert.deepEqual(
      [
        t5['architectures'],
        t5['model_type'],
        t5['d_model'],
        t5['num_layers'],
        t5['vocab_size'],
        t5['torch_dtype'],
      ],
      [['T5EncoderModel'], 't5', s.t5Hidden, s.t5Layers, 32128, torchDtype],
    );
  }
  const tr = (await readJson(path.join(dir, 'transformer', 'config.json'))) as Record<string, unknown>;
  assert.deepEqual(
    [tr['_class_name'], tr['sample_size'], tr['patch_size'], tr['in_channels'], tr['out_channels']],
    ['SD3Transformer2DModel', s.sampleSize, 2, s.latentChannels, s.latentChannels],
  );
  assert.deepEqual(
    [tr['joint_attention_dim'], tr['pooled_projection_dim'], tr['pos_embed_max_size']],
    [s.jointAttentionDim, s.clipLProjection + s.clipGProjection, s.posEmbedMaxSize],
  );
  for (const folder of ['vae_encoder', 'vae_decoder']) {
    const vae = (await readJson(path.join(dir, folder, 'config.json'))) as Record<string, unknown>;
    assert.deepEqual(
      [vae['_class_name'], vae['latent_channels'], vae['scaling_factor'], vae['shift_factor']],
      ['AutoencoderKL', s.latentChannels, 1.5305, 0.0609],
    );
    assert.deepEqual(
      [vae['use_quant_conv'], vae['use_post_quant_conv'], vae['force_upcast'], vae['block_out_channels']],
      [false, false, true, s.vaeBlockOutChannels],
    );
  }

  // Weights: genuinely in the model's dtype; all of them external for T5 and the transformer.
  const floatType =
    info.dtype === 'fp16' ? onnx.TensorProto.DataType.FLOAT16 : onnx.TensorProto.DataType.FLOAT;
  const folders = ['text_encoder', 'text_encoder_2', 'transformer', 'vae_encoder', 'vae_decoder'];
  if (info.withT5) folders.push('text_encoder_3');
  for (const folder of folders) {
    const external = folder === 'transformer' || folder === 'text_encoder_3';
    const modelBytes = await fs.readFile(path.join(dir, folder, 'model.onnx'));
    const model = decodeModel(modelBytes);
    assert.equal(Number(model.irVersion), 8);
    assert.deepEqual(
      model.opsetImport.map((o) => [o.domain, Number(o.version)]),
      [['', 17]],
    );
    const inits = model.graph?.initializer ?? [];
    assert.ok(inits.length > 0);
    assert.ok(
      inits.every((t) => t.dataType === floatType),
      `${folder}: every initializer is ${info.dtype}`,
    );
    const dataFile = path.join(dir, folder, 'model.onnx_data');
    assert.equal(existsSync(dataFile), external, `${folder}/model.onnx_data presence`);
    if (external) {
      const dataSize = (await fs.stat(dataFile)).size;
      assert.ok(modelBytes.length < 16_384, `${folder}/model.onnx is small (${modelBytes.length} bytes)`);
      assert.ok(dataSize > modelBytes.length);
      for (const t of inits) {
        assert.equal(
          t.dataLocation,
          onnx.TensorProto.DataLocation.EXTERNAL,
          `${folder}.${t.name} is external`,
        );
        const entries = Object.fromEntries((t.externalData ?? []).map((e) => [e.key, e.value]));
        assert.equal(entries['location'], 'model.onnx_data');
        const bytesPer = info.dtype === 'fp16' ? 2 : 4;
        const count = (t.dims ?? []).reduce<number>((a, d) => a * Number(d), 1);
        assert.equal(Number(entries['length']), count * bytesPer, `${folder}.${t.name} length`);
        assert.ok(Number(entries['offset']) + Number(entries['length']) <= dataSize);
      }
    } else {
      assert.ok(inits.every((t) => t.dataLocation !== onnx.TensorProto.DataLocation.EXTERNAL));
    }
  }
}

async function listFiles(dir: string): Promise<string[]> {
  const entries = await fs.readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name)))
    .sort();
}

for (const dtype of ['fp32', 'fp16'] as const) {
  describe(`writeTinyModel ${dtype}`, () => {
    let info: TinyModelInfo;
    before(async () => {
      info = await writeTinyModel(freshDir(dtype), { dtype });
    });

    test('writes the optimum layout, configs and weights', async () => {
      assert.equal(info.dtype, dtype);
      assert.deepEqual(info.sizes, TINY_MODEL_DEFAULT_SIZES);
      assert.equal(info.linear, undefined);
      await checkFilesAndConfigs(info);
    });

    test('every sub-model loads and runs with the exported I/O; outputs follow every input', async () => {
      const results = await checkSubModels(info);
      // logvar channels stay in a moderate range, so sampling from the distribution matters.
      const params = floats(results.get('vae_encoder')!['latent_parameters']!);
      const C = info.sizes.latentChannels;
      const plane = LATENT_H * LATENT_W;
      for (let b = 0; b < B; b++) {
        for (let i = C * plane; i < 2 * C * plane; i++) {
          const v = params[b * 2 * C * plane + i]!;
          assert.ok(v >= -6.01 && v <= -0.99, `logvar ${v} in [-6, -1]`);
        }
      }
      // The decoded image is in [-1, 1] and has texture inside each 8x8 block.
      const image = floats(results.get('vae_decoder')!['sample']!);
      assert.ok(image.every((v) => v >= -1 && v <= 1));
      const block = Array.from({ length: 8 }, (_, y) => image[y * 8 * LATENT_W]!);
      assert.ok(Math.max(...block) - Math.min(...block) > 0.05, 'image is not flat within a block');
    });

    test('text encoders mix over the sequence; hidden_states.0 is the embedding', async () => {
      await checkSequenceMixing(info);
    });

    test("'linear' transformer equals a*x + beta", async () => {
      const lin = await writeTinyModel(freshDir(`${dtype}-linear`), { dtype, transformerKind: 'linear' });
      assert.ok(lin.linear);
      const { a, k, m, g } = lin.linear;
      const C = lin.sizes.latentChannels;
      const J = lin.sizes.jointAttentionDim;
      const P = lin.sizes.clipLProjection + lin.sizes.clipGProjection;
      assert.equal(k.length, C);
      const S = 13;
      const x = asFed(dtype, testValues(B * C * LATENT_H * LATENT_W, 61, -2, 2));
      const enc = asFed(dtype, testValues(B * S * J, 62, -1, 1.5));
      const pooled = asFed(dtype, testValues(B * P, 63, -1, 2));
      const t = Float32Array.from([937, 120]);
      const session = await openSession(lin.dir, 'transformer');
      try {
        const out = await session.run({
          hidden_states: floatTensor(dtype, x, [B, C, LATENT_H, LATENT_W]),
          encoder_hidden_states: floatTensor(dtype, enc, [B, S, J]),
          pooled_projections: floatTensor(dtype, pooled, [B, P]),
          timestep: floatTensor(dtype, t, [B]),
        });
        const got = floats(out['out_hidden_states']!);
        const plane = LATENT_H * LATENT_W;
        const relTol = dtype === 'fp16' ? 2e-3 : 2e-6;
        for (let b = 0; b < B; b++) {
          let encMean = 0;
          for (let i = 0; i < S * J; i++) encMean += enc[b * S * J + i]!;
          encMean /= S * J;
          let pooledMean = 0;
          for (let i = 0; i < P; i++) pooledMean += pooled[b * P + i]!;
          pooledMean /= P;
          for (let c = 0; c < C; c++) {
            const beta = k[c]! * encMean + m[c]! * pooledMean + (g[c]! * t[b]!) / 1000;
            for (let i = 0; i < plane; i++) {
              const idx = (b * C + c) * plane + i;
              const expected = a * x[idx]! + beta;
              const err = Math.abs(got[idx]! - expected);
              assert.ok(err <= relTol * (2 + Math.abs(expected)), `out[${idx}] ${got[idx]} vs ${expected}`);
            }
          }
        }
      } finally {
        await session.release();
      }
    });
  });
}

describe('writeTinyModel options and safety', () => {
  test('CLIP text_embeds project last_hidden_state at the first EOS, i.e. argmax(input_ids)', async () => {
    // With cost 'zero' the projection is elementwise, so text_embeds / last_hidden_state[pos] is the same
    // vector for every input exactly when pos is the pooled position.
    const info = await writeTinyModel(freshDir('pooling'), { cost: 'zero', withT5: false });
    const cases: [string, number, number][] = [
      ['text_encoder', 49407, info.sizes.clipLHidden],
      ['text_encoder_2', 0, info.sizes.clipGHidden],
    ];
    for (const [folder, pad, H] of cases) {
      const rows = [[320, 1125, 539, 2368, 1929], [3306]];
      const session = await openSession(info.dir, folder);
      try {
        const out = await session.run({ input_ids: idsTensor(clipIds(rows, CLIP_SEQ, pad), [2, CLIP_SEQ]) });
        const lhs = floats(out['last_hidden_state']!);
        const te = floats(out['text_embeds']!);
        const ratios = (row: number, pos: number) =>
          Array.from({ length: H }, (_, j) => te[row * H + j]! / lhs[(row * CLIP_SEQ + pos) * H + j]!);
        const close = (x: number[], y: number[]) =>
          x.every((v, j) => Math.abs(v - y[j]!) <= 1e-4 * (1 + Math.abs(v)));
        const eos = rows.map((r) => r.length + 1);
        assert.ok(close(ratios(0, eos[0]!), ratios(1, eos[1]!)), `${folder} pools at the first EOS`);
        assert.ok(
          !close(ratios(0, CLIP_SEQ - 1), ratios(1, CLIP_SEQ - 1)),
          `${folder} does not pool at the end`,
        );
      } finally {
        await session.release();
      }
    }
  });

  test('same options give byte-identical files; another seed gives other weights', async () => {
    const options = { dtype: 'fp16' as const, transformerKind: 'linear' as const, seed: 7 };
    const a = await writeTinyModel(freshDir('det-a'), options);
    const b = await writeTinyModel(freshDir('det-b'), options);
    const files = await listFiles(a.dir);
    assert.deepEqual(await listFiles(b.dir), files);
    assert.ok(files.includes(path.join('transformer', 'model.onnx_data')));
    for (const f of files) {
      const x = await fs.readFile(path.join(a.dir, f));
      const y = await fs.readFile(path.join(b.dir, f));
      assert.ok(x.equals(y), `${f} differs between two writes`);
    }
    assert.deepEqual(a.linear, b.linear);
    const c = await writeTinyModel(freshDir('det-c'), { ...options, seed: 8 });
    const data = (info: TinyModelInfo) => fs.readFile(path.join(info.dir, 'transformer', 'model.onnx_data'));
    assert.ok(!(await data(a)).equals(await data(c)), 'seed changes the weights');
    assert.notDeepEqual(a.linear, c.linear);
  });

  test('withT5 false writes no T5 folders and nulls in model_index.json', async () => {
    const info = await writeTinyModel(freshDir('no-t5'), { withT5: false });
    assert.equal(info.withT5, false);
    await checkFilesAndConfigs(info);
  });

  test("cost 'zero' with the real SD3 Medium widths stays small and keeps the real I/O", async () => {
    const info = await writeTinyModel(freshDir('sd3-zero'), {
      dtype: 'fp16',
      cost: 'zero',
      sizes: SD3_MEDIUM_SIZES,
    });
    assert.deepEqual(info.sizes, SD3_MEDIUM_SIZES);
    let total = 0;
    for (const f of await listFiles(info.dir)) {
      if (!f.startsWith('tokenizer')) total += (await fs.stat(path.join(info.dir, f))).size;
    }
    assert.ok(total < 8 * 1024 * 1024, `model files take ${total} bytes`);
    const run = async (folder: string, feeds: Record<string, ort.Tensor>) => {
      const session = await openSession(info.dir, folder);
      try {
        const out = await session.run(feeds);
        for (const [name, value] of Object.entries(out)) {
          assert.equal(value.type, 'float16');
          const bad = floats(value).find((v) => !(Math.abs(v) < 1000));
          assert.equal(bad, undefined, `${folder}.${name} stays moderate in fp16`);
        }
        return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, [...v.dims]]));
      } finally {
        await session.release();
      }
    };
    const ids = idsTensor(clipIds([[320, 1125]], CLIP_SEQ, 49407), [1, CLIP_SEQ]);
    const clipL = await run('text_encoder', { input_ids: ids });
    assert.deepEqual(clipL['text_embeds'], [1, 768]);
    assert.deepEqual(clipL['hidden_states.11'], [1, 77, 768]);
    assert.equal(Object.keys(clipL).length, 2 + 13);
    const clipG = await run('text_encoder_2', { input_ids: ids });
    assert.deepEqual(clipG['text_embeds'], [1, 1280]);
    assert.deepEqual(clipG['hidden_states.31'], [1, 77, 1280]);
    assert.equal(Object.keys(clipG).length, 2 + 33);
    const t5 = await run('text_encoder_3', { input_ids: idsTensor(t5Ids([[3, 9]], 256), [1, 256]) });
    assert.deepEqual(t5['last_hidden_state'], [1, 256, 4096]);
    const tr = await run('transformer', {
      hidden_states: floatTensor('fp16', testValues(16 * 128 * 128, 71, -1, 1), [1, 16, 128, 128]),
      encoder_hidden_states: floatTensor('fp16', testValues(333 * 4096, 72, -1, 1), [1, 333, 4096]),
      pooled_projections: floatTensor('fp16', testValues(2048, 73, -1, 1), [1, 2048]),
      timestep: floatTensor('fp16', Float32Array.of(1000), [1]),
    });
    assert.deepEqual(tr['out_hidden_states'], [1, 16, 128, 128]);
    const decoded = await run('vae_decoder', {
      latent_sample: floatTensor('fp16', testValues(16 * 128 * 128, 74, -1, 1), [1, 16, 128, 128]),
    });
    assert.deepEqual(decoded['sample'], [1, 3, 1024, 1024]);
    const encoded = await run('vae_encoder', {
      sample: floatTensor('fp16', testValues(3 * 1024 * 1024, 75, -1, 1), [1, 3, 1024, 1024]),
    });
    assert.deepEqual(encoded['latent_parameters'], [1, 32, 128, 128]);
  });

  test('an existing non-empty outDir is refused and left untouched; an empty one is filled', async () => {
    const dir = freshDir('occupied');
    mkdirSync(dir);
    writeFileSync(path.join(dir, 'keep.txt'), 'mine');
    await assert.rejects(writeTinyModel(dir), (err) => isPipelineError(err) && err.code === 'input_invalid');
    assert.deepEqual(readdirSync(dir), ['keep.txt']);
    assert.equal(await fs.readFile(path.join(dir, 'keep.txt'), 'utf8'), 'mine');

    const file = freshDir('a-file');
    writeFileSync(file, 'x');
    await assert.rejects(writeTinyModel(file), (err) => isPipelineError(err) && err.code === 'input_invalid');

    const empty = freshDir('empty');
    mkdirSync(empty);
    const info = await writeTinyModel(empty, { withT5: false });
    assert.ok(existsSync(path.join(info.dir, 'model_index.json')));
    assert.ok(!readdirSync(root).some((n) => n.includes('.tmp-')), 'no temp folder left');
  });

  test('a target filled while writing fails without leaving a temp folder', async () => {
    const parent = freshDir('race');
    mkdirSync(parent);
    const target = path.join(parent, 'model');
    const pending = writeTinyModel(target, { withT5: false });
    // Occupy the target as soon as the writer's temp folder appears, i.e. before it renames.
    await new Promise<void>((resolve) => {
      const poll = () => {
        if (readdirSync(parent).some((n) => n.includes('.tmp-'))) {
          mkdirSync(target);
          writeFileSync(path.join(target, 'other.txt'), 'other writer');
          resolve();
        } else setImmediate(poll);
      };
      poll();
    });
    await assert.rejects(pending, (err) => isPipelineError(err) && err.code === 'input_invalid');
    assert.deepEqual(readdirSync(parent), ['model']);
    assert.deepEqual(readdirSync(target), ['other.txt']);
  });

  test('inconsistent options are refused before anything is written', async () => {
    const bad: { sizes?: Partial<TinyModelSizes>; cost?: 'zero'; seed?: number }[] = [
      { sizes: { jointAttentionDim: 64, t5Hidden: 64 } },
      { sizes: { t5Hidden: 128, jointAttentionDim: 96 } },
      { sizes: { clipLHidden: 0 } },
      { cost: 'zero', sizes: { clipLProjection: 16 } },
      { seed: 1.5 },
    ];
    for (const options of bad) {
      const dir = freshDir('bad');
      await assert.rejects(
        writeTinyModel(dir, options),
        (err) => isPipelineError(err) && err.code === 'input_invalid',
        JSON.stringify(options),
      );
      assert.ok(!existsSync(dir));
    }
    assert.ok(!readdirSync(root).some((n) => n.includes('.tmp-')));
  });
});
