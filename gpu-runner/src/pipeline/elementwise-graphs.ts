/**
 * The per-step and post-processing tensor math of the pipeline, as small ONNX graphs that
 * onnxruntime runs natively (diffusers runs the same math as tensor ops on its device). This keeps
 * the JavaScript host loop to copies and bookkeeping, and lets float16 pipelines follow diffusers'
 * half-precision op sequence exactly: every half tensor op is computed in float32 and rounded to
 * half, which the graph spells as Cast(float16) -> Cast(float).
 */
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;
const DT = onnx.TensorProto.DataType;

export type FloatDtype = 'float32' | 'float16';

class GraphWriter {
  private readonly nodes: InstanceType<typeof onnx.NodeProto>[] = [];
  private readonly inputs: InstanceType<typeof onnx.ValueInfoProto>[] = [];
  private readonly outputs: InstanceType<typeof onnx.ValueInfoProto>[] = [];
  private readonly initializers: InstanceType<typeof onnx.TensorProto>[] = [];
  private counter = 0;

  private valueInfo(name: string, elemType: number, dims: readonly (number | string)[]) {
    const dim = dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d }));
    return onnx.ValueInfoProto.create({ name, type: { tensorType: { elemType, shape: { dim } } } });
  }

  input(name: string, elemType: number, dims: readonly (number | string)[]): string {
    this.inputs.push(this.valueInfo(name, elemType, dims));
    return name;
  }

  output(name: string, value: string, elemType: number, dims: readonly (number | string)[]): void {
    this.nodes.push(
      onnx.NodeProto.create({ opType: 'Identity', input: [value], output: [name], name: `out_${name}` }),
    );
    this.outputs.push(this.valueInfo(name, elemType, dims));
  }

  scalar(value: number): string {
    const name = `c${this.counter++}`;
    this.initializers.push(
      onnx.TensorProto.create({
        name,
        dims: [],
        dataType: DT.FLOAT,
        rawData: new Uint8Array(new Float32Array([value]).buffer),
      }),
    );
    return name;
  }

  op(
    opType: string,
    input: string[],
    attrs: Record<string, number | number[]> = {},
    outputCount = 1,
  ): string[] {
    const output = Array.from({ length: outputCount }, () => `t${this.counter++}`);
    const attribute = Object.entries(attrs).map(([name, v]) =>
      Array.isArray(v)
        ? { name, type: onnx.AttributeProto.AttributeType.INTS, ints: v }
        : { name, type: onnx.AttributeProto.AttributeType.INT, i: v },
    );
    this.nodes.push(onnx.NodeProto.create({ opType, input, output, name: output[0], attribute }));
    return output;
  }

  one(opType: string, input: string[], attrs: Record<string, number | number[]> = {}): string {
    return this.op(opType, input, attrs)[0]!;
  }

  encode(name: string): Uint8Array {
    const graph = onnx.GraphProto.create({
      name,
      node: this.nodes,
      input: this.inputs,
      output: this.outputs,
      initializer: this.initializers,
    });
    const model = onnx.ModelProto.create({ irVersion: 8, opsetImport: [{ domain: '', version: 17 }], graph });
    return onnx.ModelProto.encode(model).finish();
  }
}

const elemOf = (dtype: FloatDtype) => (dtype === 'float16' ? DT.FLOAT16 : DT.FLOAT);

/** A half tensor op's result: the float32 value rounded to half (kept in float32 for the next op). */
function halfOp(g: GraphWriter, dtype: FloatDtype, value: string): string {
  if (dtype === 'float32') return value;
  return g.one('Cast', [g.one('Cast', [value], { to: DT.FLOAT16 })], { to: DT.FLOAT });
}

/**
 * CFG and the flow-match Euler step (sd3-pipeline.md §2.3, §3):
 *   noise_pred = u + guidance * (c - u)          (model_output = [u; c] with CFG, in the model dtype)
 *   prev       = sample + (sigma_next - sigma) * noise_pred, in float32, cast to the model dtype
 * Outputs the next transformer input ([prev; prev] with CFG), whose first rows are the new latents.
 * Inputs `guidance` and `dt` are float32 scalars.
 */
export function guidedEulerStepGraph(dtype: FloatDtype, cfg: boolean): Uint8Array {
  const g = new GraphWriter();
  const elem = elemOf(dtype);
  const modelBatch = cfg ? 'model_batch' : 'batch';
  const out = g.input('model_output', elem, [modelBatch, 'channels', 'height', 'width']);
  const sample = g.input('sample', elem, ['batch', 'channels', 'height', 'width']);
  const guidance = g.input('guidance', DT.FLOAT, []);
  const dt = g.input('dt', DT.FLOAT, []);
  const out32 = dtype === 'float16' ? g.one('Cast', [out], { to: DT.FLOAT }) : out;
  const sample32 = dtype === 'float16' ? g.one('Cast', [sample], { to: DT.FLOAT }) : sample;
  let noisePred = out32;
  if (cfg) {
    const [u, c] = g.op('Split', [out32], { axis: 0 }, 2) as [string, string];
    const diff = halfOp(g, dtype, g.one('Sub', [c, u]));
    const scaled = halfOp(g, dtype, g.one('Mul', [diff, guidance]));
    noisePred = halfOp(g, dtype, g.one('Add', [u, scaled]));
  }
  // The 0-d float32 (sigma_next - sigma) does not promote a half model output: the product is half.
  const delta = halfOp(g, dtype, g.one('Mul', [noisePred, dt]));
  const prev32 = g.one('Add', [sample32, delta]);
  const prev = dtype === 'float16' ? g.one('Cast', [prev32], { to: DT.FLOAT16 }) : prev32;
  g.output('next_input', cfg ? g.one('Concat', [prev, prev], { axis: 0 }) : prev, elem, [
    modelBatch,
    'channels',
    'height',
    'width',
  ]);
  return g.encode('guided_euler_step');
}

/**
 * diffusers' image post-processing: (x * 0.5 + 0.5).clamp(0, 1) in the VAE's dtype, NHWC,
 * then (x * 255).round() in float32 (round half to even) to uint8.
 */
export function postprocessGraph(dtype: FloatDtype): Uint8Array {
  const g = new GraphWriter();
  const x = g.input('sample', elemOf(dtype), ['batch', 3, 'height', 'width']);
  const x32 = dtype === 'float16' ? g.one('Cast', [x], { to: DT.FLOAT }) : x;
  const half = g.scalar(0.5);
  const y = halfOp(g, dtype, g.one('Add', [halfOp(g, dtype, g.one('Mul', [x32, half])), half]));
  const clamped = g.one('Clip', [y, g.scalar(0), g.scalar(1)]);
  const rounded = g.one('Round', [g.one('Mul', [clamped, g.scalar(255)])]);
  const bytes = g.one('Cast', [rounded], { to: DT.UINT8 });
  g.output('image', g.one('Transpose', [bytes], { perm: [0, 2, 3, 1] }), DT.UINT8, [
    'batch',
    'height',
    'width',
    3,
  ]);
  return g.encode('postprocess');
}
