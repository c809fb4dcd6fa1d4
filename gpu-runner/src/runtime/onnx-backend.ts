/**
 * The one module that imports onnxruntime-node. It owns execution-provider selection, session
 * creation and running, and translates onnxruntime's errors into PipelineErrors. Everything else
 * sees only HostTensor and OnnxModel.
 */
import { access, stat } from 'node:fs/promises';
import * as ort from 'onnxruntime-node';
import { PipelineError } from '../errors.js';
import { probeModelBytes } from './probe-model.js';

export type ExecutionProvider = 'cpu' | 'cuda' | 'tensorrt';
export const EXECUTION_PROVIDERS: readonly ExecutionProvider[] = ['cpu', 'cuda', 'tensorrt'];

export type TensorDtype = 'float32' | 'float16' | 'int64' | 'uint8';
export type TensorData = Float32Array | Uint16Array | BigInt64Array | Uint8Array;

/** A tensor in host memory, as the pipeline sees it. float16 data are IEEE half bit patterns. */
export interface HostTensor {
  readonly dtype: TensorDtype;
  readonly dims: readonly number[];
  readonly data: TensorData;
}

export interface IoSpec {
  readonly name: string;
  /** onnxruntime's element type name (float32, float16, int64, ...). */
  readonly dtype: string;
  /** Static dimensions as numbers, dynamic ones as their symbolic names. */
  readonly dims: readonly (number | string)[];
}

export interface OnnxModel {
  readonly path: string;
  readonly inputs: readonly IoSpec[];
  readonly outputs: readonly IoSpec[];
  /** Calls and wall time spent inside onnxruntime's run (including its tensor copies). */
  readonly stats: { runs: number; runMs: number };
  /**
   * Runs the model; only the named outputs are fetched (all when omitted). Outputs may instead be
   * preallocated tensors, which onnxruntime fills in place (saves an allocation per step).
   */
  run(
    feeds: Record<string, HostTensor>,
    outputs?: readonly string[] | Readonly<Record<string, HostTensor>>,
  ): Promise<Record<string, HostTensor>>;
  release(): Promise<void>;
}

export interface SessionOptions {
  provider: ExecutionProvider;
  /** Threads for the CPU provider's operator kernels; onnxruntime's default when omitted. */
  intraOpThreads?: number;
}

function providerOptions(provider: ExecutionProvider): ort.InferenceSession.ExecutionProviderConfig[] {
  // Exactly one provider and no CPU fallback: a GPU runner must never run silently on the CPU.
  return [provider];
}

function sessionOptions(options: SessionOptions): ort.InferenceSession.SessionOptions {
  return {
    executionProviders: providerOptions(options.provider),
    graphOptimizationLevel: 'all',
    logSeverityLevel: 3,
    // onnxruntime's pool threads spin after each run by default; between denoising steps they
    // would take the cores the host-side step needs.
    extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } },
    ...(options.intraOpThreads ? { intraOpNumThreads: options.intraOpThreads } : {}),
  };
}

/**
 * Checks that the provider loads by creating a session for a one-node graph. Fails with
 * 'provider_unavailable' and onnxruntime's reason (e.g. the CUDA libraries are missing).
 */
export async function probeProvider(provider: ExecutionProvider): Promise<void> {
  if (!EXECUTION_PROVIDERS.includes(provider)) {
    throw new PipelineError(
      'input_invalid',
      `provider must be one of ${EXECUTION_PROVIDERS.join(', ')}, got ${JSON.stringify(provider)}`,
    );
  }
  try {
    const session = await ort.InferenceSession.create(probeModelBytes(), sessionOptions({ provider }));
    await session.release();
  } catch (err) {
    throw new PipelineError(
      'provider_unavailable',
      `onnxruntime execution provider '${provider}' could not be loaded: ${firstLine(err)}`,
      { cause: err },
    );
  }
}

function firstLine(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return text.split('\n')[0]!.trim();
}

function ioSpecs(metadata: readonly ort.InferenceSession.ValueMetadata[]): IoSpec[] {
  return metadata.map((m) =>
    m.isTensor
      ? { name: m.name, dtype: m.type, dims: [...m.shape] }
      : { name: m.name, dtype: 'non-tensor', dims: [] },
  );
}

function isNameList(
  outputs: readonly string[] | Readonly<Record<string, HostTensor>>,
): outputs is readonly string[] {
  return Array.isArray(outputs);
}

function toOrt(t: HostTensor): ort.Tensor {
  return new ort.Tensor(t.dtype, t.data, t.dims);
}

function fromOrt(name: string, t: ort.Tensor): HostTensor {
  if (t.type === 'float32' || t.type === 'float16' || t.type === 'int64' || t.type === 'uint8') {
    return { dtype: t.type, dims: t.dims, data: t.data as TensorData };
  }
  throw new PipelineError('model_invalid', `output ${name} has unsupported element type ${t.type}`);
}

/** Loads one ONNX file (external data is resolved next to it) with the chosen provider. */
export async function loadOnnxModel(path: string, options: SessionOptions): Promise<OnnxModel> {
  try {
    await access(path);
  } catch {
    throw new PipelineError('model_invalid', `missing ONNX file ${path}`);
  }
  if ((await stat(path)).size === 0) throw new PipelineError('model_invalid', `empty ONNX file ${path}`);
  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(path, sessionOptions(options));
  } catch (err) {
    const reason = firstLine(err);
    if (/providers?_(cuda|tensorrt|shared)|Failed to load shared library/i.test(reason)) {
      throw new PipelineError(
        'provider_unavailable',
        `onnxruntime execution provider '${options.provider}' could not be loaded: ${reason}`,
        { cause: err },
      );
    }
    throw new PipelineError('model_invalid', `cannot load ${path}: ${reason}`, { cause: err });
  }
  return wrapSession(path, session);
}

/**
 * Loads a small graph the pipeline builds itself (elementwise step math) on the CPU provider.
 * The float16 emulation relies on Cast pairs surviving graph optimization; onnxruntime keeps them
 * (elementwise-graphs.test.ts checks the results op by op against half arithmetic).
 */
export async function loadGraphBytes(name: string, bytes: Uint8Array): Promise<OnnxModel> {
  const session = await ort.InferenceSession.create(bytes, {
    executionProviders: ['cpu'],
    graphOptimizationLevel: 'all',
    logSeverityLevel: 3,
    extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } },
  });
  return wrapSession(name, session);
}

function wrapSession(path: string, session: ort.InferenceSession): OnnxModel {
  const inputs = ioSpecs(session.inputMetadata);
  const outputs = ioSpecs(session.outputMetadata);
  const stats = { runs: 0, runMs: 0 };
  return {
    path,
    inputs,
    outputs,
    stats,
    async run(feeds, outputs) {
      const ortFeeds: Record<string, ort.Tensor> = {};
      for (const [name, tensor] of Object.entries(feeds)) ortFeeds[name] = toOrt(tensor);
      let result: ort.InferenceSession.OnnxValueMapType;
      const start = performance.now();
      try {
        if (outputs === undefined) result = await session.run(ortFeeds);
        else if (isNameList(outputs)) result = await session.run(ortFeeds, [...outputs]);
        else {
          const fetches: Record<string, ort.Tensor> = {};
          for (const [name, tensor] of Object.entries(outputs)) fetches[name] = toOrt(tensor);
          result = await session.run(ortFeeds, fetches);
        }
        stats.runs++;
        stats.runMs += performance.now() - start;
      } catch (err) {
        throw new PipelineError('internal', `onnxruntime failed running ${path}: ${firstLine(err)}`, {
          cause: err,
        });
      }
      const out: Record<string, HostTensor> = {};
      for (const [name, value] of Object.entries(result)) out[name] = fromOrt(name, value as ort.Tensor);
      return out;
    },
    async release() {
      await session.release();
    },
  };
}
