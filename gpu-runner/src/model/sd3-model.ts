/**
 * Opens an SD3 model folder: reads the configs, checks the files, creates one onnxruntime session
 * per sub-model and checks each session's inputs and outputs against what the pipeline will feed
 * and fetch (expected vs found).
 */
import { join } from 'node:path';
import { PipelineError } from '../errors.js';
import {
  type ExecutionProvider,
  type IoSpec,
  loadOnnxModel,
  type OnnxModel,
  probeProvider,
} from '../runtime/onnx-backend.js';
import { checkExternalData } from './external-data.js';
import { readModelConfig, type Sd3ModelConfig, type SubmodelFolder } from './model-config.js';

export type ModelDtype = 'float32' | 'float16';

export interface Sd3Model {
  readonly config: Sd3ModelConfig;
  /** The transformer's float type; latents and noise use it, as diffusers uses the pipeline dtype. */
  readonly dtype: ModelDtype;
  readonly clipL: OnnxModel;
  readonly clipG: OnnxModel;
  readonly t5: OnnxModel | null;
  readonly transformer: OnnxModel;
  readonly vaeEncoder: OnnxModel;
  readonly vaeDecoder: OnnxModel;
  release(): Promise<void>;
}

export interface LoadModelOptions {
  provider: ExecutionProvider;
  /** false runs without the T5 encoder even when the folder has one. */
  t5?: boolean;
  intraOpThreads?: number;
}

type Dim = number | '*';
interface Expected {
  name: string;
  dtypes: readonly string[];
  dims: readonly Dim[];
  /** Which config value a static dimension comes from, for the error message. */
  why?: string;
}

const FLOAT = ['float32', 'float16'] as const;

function checkIo(
  path: string,
  kind: 'input' | 'output',
  found: readonly IoSpec[],
  expected: readonly Expected[],
) {
  for (const want of expected) {
    const got = found.find((f) => f.name === want.name);
    if (!got) {
      throw new PipelineError(
        'model_invalid',
        `${path}: expected ${kind} '${want.name}', found ${kind}s ${found.map((f) => `'${f.name}'`).join(', ') || 'none'}`,
      );
    }
    if (!want.dtypes.includes(got.dtype)) {
      throw new PipelineError(
        'model_invalid',
        `${path}: ${kind} '${want.name}' should be ${want.dtypes.join(' or ')}, found ${got.dtype}`,
      );
    }
    const rankOk = got.dims.length === want.dims.length;
    const dimsOk =
      rankOk && want.dims.every((d, i) => d === '*' || typeof got.dims[i] !== 'number' || got.dims[i] === d);
    if (!dimsOk) {
      const fmt = (dims: readonly (number | string)[]) => `[${dims.join(', ')}]`;
      throw new PipelineError(
        'model_invalid',
        `${path}: ${kind} '${want.name}' should have shape ${fmt(want.dims)}${want.why ? ` (${want.why})` : ''}, found ${fmt(got.dims)}`,
      );
    }
  }
}

function clipExpectations(
  hidden: number,
  projection: number,
  layers: number,
  folder: string,
): { inputs: Expected[]; outputs: Expected[] } {
  const outputs: Expected[] = [
    {
      name: 'text_embeds',
      dtypes: FLOAT,
      dims: ['*', projection],
      why: `projection_dim in ${folder}/config.json`,
    },
  ];
  // The pipeline reads the penultimate layer by default and earlier ones with clip_skip.
  for (let i = 0; i <= layers; i++) {
    outputs.push({
      name: `hidden_states.${i}`,
      dtypes: FLOAT,
      dims: ['*', '*', hidden],
      why: `hidden_size in ${folder}/config.json`,
    });
  }
  return { inputs: [{ name: 'input_ids', dtypes: ['int64'], dims: ['*', '*'] }], outputs };
}

async function openSubmodel(
  dir: string,
  folder: SubmodelFolder,
  options: LoadModelOptions,
  io: { inputs: Expected[]; outputs: Expected[] },
): Promise<OnnxModel> {
  const path = join(dir, folder, 'model.onnx');
  await checkExternalData(path).catch((err: unknown) => {
    if (err instanceof PipelineError) throw err;
    throw new PipelineError('model_invalid', `missing file ${path}`);
  });
  const model = await loadOnnxModel(path, {
    provider: options.provider,
    ...(options.intraOpThreads ? { intraOpThreads: options.intraOpThreads } : {}),
  });
  try {
    checkIo(path, 'input', model.inputs, io.inputs);
    checkIo(path, 'output', model.outputs, io.outputs);
    return model;
  } catch (err) {
    await model.release();
    throw err;
  }
}

export async function loadSd3Model(dir: string, options: LoadModelOptions): Promise<Sd3Model> {
  const config = await readModelConfig(dir, options.t5 === false ? { t5: false } : {});
  await probeProvider(options.provider);
  const { clipL: l, clipG: g, transformer: tr, vae } = config;
  const opened: OnnxModel[] = [];
  const open = async (folder: SubmodelFolder, io: { inputs: Expected[]; outputs: Expected[] }) => {
    const m = await openSubmodel(dir, folder, options, io);
    opened.push(m);
    return m;
  };
  try {
    const clipL = await open(
      'text_encoder',
      clipExpectations(l.hiddenSize, l.projectionDim, l.numLayers, 'text_encoder'),
    );
    const clipG = await open(
      'text_encoder_2',
      clipExpectations(g.hiddenSize, g.projectionDim, g.numLayers, 'text_encoder_2'),
    );
    const t5 = config.t5
      ? await open('text_encoder_3', {
          inputs: [{ name: 'input_ids', dtypes: ['int64'], dims: ['*', '*'] }],
          outputs: [
            {
              name: 'last_hidden_state',
              dtypes: FLOAT,
              dims: ['*', '*', config.t5.dModel],
              why: 'd_model in text_encoder_3/config.json',
            },
          ],
        })
      : null;
    const transformer = await open('transformer', {
      inputs: [
        { name: 'hidden_states', dtypes: FLOAT, dims: ['*', tr.inChannels, '*', '*'], why: 'in_channels' },
        {
          name: 'encoder_hidden_states',
          dtypes: FLOAT,
          dims: ['*', '*', tr.jointAttentionDim],
          why: 'joint_attention_dim in transformer/config.json',
        },
        {
          name: 'pooled_projections',
          dtypes: FLOAT,
          dims: ['*', tr.pooledProjectionDim],
          why: 'pooled_projection_dim in transformer/config.json',
        },
        { name: 'timestep', dtypes: FLOAT, dims: ['*'] },
      ],
      outputs: [
        {
          name: 'out_hidden_states',
          dtypes: FLOAT,
          dims: ['*', tr.outChannels, '*', '*'],
          why: 'out_channels',
        },
      ],
    });
    const vaeEncoder = await open('vae_encoder', {
      inputs: [{ name: 'sample', dtypes: FLOAT, dims: ['*', 3, '*', '*'] }],
      outputs: [
        {
          name: 'latent_parameters',
          dtypes: FLOAT,
          dims: ['*', 2 * vae.latentChannels, '*', '*'],
          why: 'mean and logvar of latent_channels',
        },
      ],
    });
    const vaeDecoder = await open('vae_decoder', {
      inputs: [
        {
          name: 'latent_sample',
          dtypes: FLOAT,
          dims: ['*', vae.latentChannels, '*', '*'],
          why: 'latent_channels',
        },
      ],
      outputs: [{ name: 'sample', dtypes: FLOAT, dims: ['*', 3, '*', '*'] }],
    });
    const dtype = transformer.inputs.find((i) => i.name === 'hidden_states')!.dtype as ModelDtype;
    return {
      config,
      dtype,
      clipL,
      clipG,
      t5,
      transformer,
      vaeEncoder,
      vaeDecoder,
      async release() {
        await Promise.all(opened.map((m) => m.release()));
      },
    };
  } catch (err) {
    await Promise.all(opened.map((m) => m.release().catch(() => undefined)));
    throw err;
  }
}

/** The dtype a model expects for a named input. */
export function inputDtype(model: OnnxModel, name: string): ModelDtype {
  return model.inputs.find((i) => i.name === name)!.dtype as ModelDtype;
}
export function outputDtype(model: OnnxModel, name: string): ModelDtype {
  return model.outputs.find((o) => o.name === name)!.dtype as ModelDtype;
}
