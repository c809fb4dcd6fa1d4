/**
 * A minimal ONNX graph builder on top of onnx-proto (IR 8, opset 17).
 *
 * Graphs compute in float32 inside. For fp16 models the float inputs, outputs and weights are genuinely
 * float16, and Cast nodes convert at the edges, because the CPU execution provider lacks many fp16
 * kernels (LayerNormalization, Sin, GatherND, ...).
 */

import type { onnx as OnnxTypes } from 'onnx-proto';
import onnxProto from 'onnx-proto';
import { float32ToHalfArray, roundToHalf } from '../tensor/float16.js';
import { Rng } from './prng.js';

const { onnx } = onnxProto;

export type TinyDtype = 'fp32' | 'fp16';
/** A tensor dimension: a static size or a named dynamic axis. */
export type Dim = number | string;
export type AttrValue = { i: number } | { f: number } | { ints: number[] };

export const IR_VERSION = 8;
export const OPSET = 17;
export const EXTERNAL_DATA_FILE = 'model.onnx_data';
/** Offsets in the external data file are aligned like this, so a loader may map tensors directly. */
const EXTERNAL_ALIGN = 64;

const DT = onnx.TensorProto.DataType;
export const ELEM_FLOAT = DT.FLOAT;
export const ELEM_FLOAT16 = DT.FLOAT16;
export const ELEM_INT64 = DT.INT64;

interface Initializer {
  name: string;
  dims: number[];
  dataType: number;
  bytes: Uint8Array;
}

export interface EncodedModel {
  /** The bytes of model.onnx. */
  model: Uint8Array;
  /** The bytes of model.onnx_data, when the weights were stored externally. */
  data: Uint8Array | null;
}

function bytesOf(view: ArrayBufferView): Uint8Array {
  return new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
}

function product(dims: readonly number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}

function toAttribute(name: string, value: AttrValue): OnnxTypes.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if ('i' in value) return { name, type: T.INT, i: value.i };
  if ('f' in value) return { name, type: T.FLOAT, f: value.f };
  return { name, type: T.INTS, ints: value.ints };
}

function valueInfo(name: string, elemType: number, dims: readonly Dim[]): OnnxTypes.IValueInfoProto {
  return onnx.ValueInfoProto.create({
    name,
    type: {
      tensorType: {
        elemType,
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  });
}

export class GraphBuilder {
  private readonly nodes: OnnxTypes.INodeProto[] = [];
  private readonly initializers: Initializer[] = [];
  private readonly inputs: OnnxTypes.IValueInfoProto[] = [];
  private readonly outputs: OnnxTypes.IValueInfoProto[] = [];
  private readonly used = new Set<string>();
  private counter = 0;

  /**
   * @param stream names this graph's PRNG streams; together with `seed` it fixes every weight.
   */
  constructor(
    readonly dtype: TinyDtype,
    private readonly seed: number,
    private readonly stream: string,
  ) {}

  /** The element type of float inputs, outputs and weights in this model. */
  get floatElem(): number {
    return this.dtype === 'fp16' ? ELEM_FLOAT16 : ELEM_FLOAT;
  }

  /** The values the graph actually computes with once `values` are stored in this model's dtype. */
  stored(values: Float32Array): Float32Array {
    return this.dtype === 'fp16' ? values.map(roundToHalf) : values;
  }

  private claim(name: string): string {
    if (this.used.has(name)) throw new Error(`tiny-model graph ${this.stream}: duplicate value name ${name}`);
    this.used.add(name);
    return name;
  }

  private fresh(prefix: string): string {
    let name: string;
    do name = `${prefix}_${this.counter++}`;
    while (this.used.has(name));
    return this.claim(name);
  }

  /** A float weight; returns the name of its float32 value inside the graph. */
  param(name: string, dims: number[], values: Float32Array): string {
    if (values.length !== product(dims)) {
      throw new Error(`tiny-model weight ${name}: ${values.length} values for dims [${dims.join(', ')}]`);
    }
    if (this.dtype === 'fp32') {
      this.initializers.push({ name: this.claim(name), dims, dataType: ELEM_FLOAT, bytes: bytesOf(values) });
      return name;
    }
    const half = this.claim(`${name}.fp16`);
    this.initializers.push({
      name: half,
      dims,
      dataType: ELEM_FLOAT16,
      bytes: bytesOf(float32ToHalfArray(values)),
    });
    this.nodes.push({
      opType: 'Cast',
      name: `Cast_${name}`,
      input: [half],
      output: [this.claim(name)],
      attribute: [toAttribute('to', { i: ELEM_FLOAT })],
    });
    return name;
  }

  /** Uniform random weight values in [lo, hi), drawn from the stream named by this graph and `name`. */
  randomValues(name: string, dims: number[], lo: number, hi: number): Float32Array {
    return new Rng(this.seed, `${this.stream}/${name}`).uniform(product(dims), lo, hi);
  }

  /** A float weight with uniform random values in [lo, hi). */
  random(name: string, dims: number[], lo: number, hi: number): string {
    return this.param(name, dims, this.randomValues(name, dims, lo, hi));
  }

  /** A float scalar constant (stored in the model's dtype like every float weight). */
  scalar(name: string, value: number): string {
    return this.param(name, [], Float32Array.of(value));
  }

  /**
   * An int64 constant (axes, indices; `dims` defaults to 1-D). It is a Constant node, not an
   * initializer, as in PyTorch exports: onnxruntime's shape inference cannot read such tensors from
   * external data, and this keeps every initializer of an external-data model in model.onnx_data.
   */
  ints(name: string, values: number[], dims: number[] = [values.length]): string {
    const data = BigInt64Array.from(values, (v) => BigInt(v));
    const value = onnx.TensorProto.create({ dims, dataType: ELEM_INT64, rawData: bytesOf(data) });
    this.nodes.push({
      opType: 'Constant',
      name: `Constant_${name}`,
      input: [],
      output: [this.claim(name)],
      attribute: [{ name: 'value', type: onnx.AttributeProto.AttributeType.TENSOR, t: value }],
    });
    return name;
  }

  /** Declares a graph input; float inputs return the name of their float32 value. */
  input(name: string, kind: 'float' | 'int64', dims: readonly Dim[]): string {
    if (kind === 'int64') {
      this.inputs.push(valueInfo(this.claim(name), ELEM_INT64, dims));
      return name;
    }
    this.inputs.push(valueInfo(this.claim(name), this.floatElem, dims));
    return this.dtype === 'fp32' ? name : this.op('Cast', [name], { to: { i: ELEM_FLOAT } });
  }

  /** Declares a float graph output fed by the float32 value `value` (outputs keep their call order). */
  output(name: string, value: string, dims: readonly Dim[]): void {
    const out = this.claim(name);
    if (this.dtype === 'fp32') {
      this.nodes.push({ opType: 'Identity', name: `Output_${name}`, input: [value], output: [out] });
    } else {
      this.nodes.push({
        opType: 'Cast',
        name: `Output_${name}`,
        input: [value],
        output: [out],
        attribute: [toAttribute('to', { i: ELEM_FLOAT16 })],
      });
    }
    this.outputs.push(valueInfo(out, this.floatElem, dims));
  }

  /** Adds a node with one output and returns the output's name. */
  op(opType: string, inputs: string[], attrs: Record<string, AttrValue> = {}): string {
    const [out] = this.opN(opType, inputs, 1, attrs);
    return out!;
  }

  /** Adds a node with `count` outputs. */
  opN(opType: string, inputs: string[], count: number, attrs: Record<string, AttrValue> = {}): string[] {
    const output = Array.from({ length: count }, () => this.fresh(opType));
    this.nodes.push({
      opType,
      name: `${opType}_node_${this.nodes.length}`,
      input: inputs,
      output,
      attribute: Object.entries(attrs).map(([k, v]) => toAttribute(k, v)),
    });
    return output;
  }

  /**
   * Serialises the model. With `external`, every initializer goes to one `model.onnx_data` file next to
   * model.onnx (dataLocation EXTERNAL with location/offset/length), as optimum saves large models.
   */
  encode(graphName: string, external: boolean): EncodedModel {
    let data: Uint8Array | null = null;
    let initializer: OnnxTypes.ITensorProto[];
    if (external) {
      const offsets: number[] = [];
      let size = 0;
      for (const t of this.initializers) {
        size = Math.ceil(size / EXTERNAL_ALIGN) * EXTERNAL_ALIGN;
        offsets.push(size);
        size += t.bytes.byteLength;
      }
      data = new Uint8Array(size);
      initializer = this.initializers.map((t, i) => {
        const offset = offsets[i]!;
        data!.set(t.bytes, offset);
        return onnx.TensorProto.create({
          name: t.name,
          dims: t.dims,
          dataType: t.dataType,
          dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
          externalData: [
            { key: 'location', value: EXTERNAL_DATA_FILE },
            { key: 'offset', value: String(offset) },
            { key: 'length', value: String(t.bytes.byteLength) },
          ],
        });
      });
    } else {
      initializer = this.initializers.map((t) =>
        onnx.TensorProto.create({ name: t.name, dims: t.dims, dataType: t.dataType, rawData: t.bytes }),
      );
    }
    const model = onnx.ModelProto.create({
      irVersion: IR_VERSION,
      producerName: 'sd3-serverless tiny-model',
      opsetImport: [{ domain: '', version: OPSET }],
      graph: {
        name: graphName,
        node: this.nodes,
        initializer,
        input: this.inputs,
        output: this.outputs,
      },
    });
    return { model: onnx.ModelProto.encode(model).finish(), data };
  }
}
