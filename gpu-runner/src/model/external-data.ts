/**
 * Checks an ONNX file's external-data references before onnxruntime reads them: a truncated or
 * missing `model.onnx_data` (an interrupted download, a Git LFS pointer) otherwise surfaces as an
 * out-of-bounds read deep inside onnxruntime.
 */
import { readFile, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import onnxProto from 'onnx-proto';
import { PipelineError } from '../errors.js';

const { onnx } = onnxProto;

/** Graph-only files of an external-data export are small; larger files embed their weights. */
const MAX_PARSED_BYTES = 256 * 1024 * 1024;

export async function checkExternalData(modelPath: string): Promise<void> {
  const info = await stat(modelPath);
  if (info.size > MAX_PARSED_BYTES) return;
  let model: InstanceType<typeof onnx.ModelProto>;
  try {
    model = onnx.ModelProto.decode(await readFile(modelPath));
  } catch (err) {
    throw new PipelineError(
      'model_invalid',
      `${modelPath} is not a valid ONNX file: ${(err as Error).message}`,
    );
  }
  const needed = new Map<string, number>();
  for (const init of model.graph?.initializer ?? []) {
    if (init.dataLocation !== onnx.TensorProto.DataLocation.EXTERNAL) continue;
    const entries = new Map((init.externalData ?? []).map((e) => [e.key ?? '', e.value ?? '']));
    const location = entries.get('location');
    if (!location)
      throw new PipelineError('model_invalid', `${modelPath}: initializer ${init.name} has no location`);
    const end = Number(entries.get('offset') ?? 0) + Number(entries.get('length') ?? 0);
    needed.set(location, Math.max(needed.get(location) ?? 0, end));
  }
  for (const [location, end] of needed) {
    const dataPath = join(dirname(modelPath), location);
    let size: number;
    try {
      size = (await stat(dataPath)).size;
    } catch {
      throw new PipelineError(
        'model_invalid',
        `missing external data file ${dataPath} (referenced by ${modelPath})`,
      );
    }
    if (size < end) {
      throw new PipelineError(
        'model_invalid',
        `external data file ${dataPath} is truncated: ${size} bytes, but ${modelPath} needs ${end}`,
      );
    }
  }
}
