/**
 * A one-node ONNX graph (Identity on a float tensor) encoded by hand, used to check that an
 * execution provider loads before any multi-gigabyte model is touched. Hand-encoding keeps
 * the runner free of a protobuf dependency at run time.
 */

function varint(n: number): number[] {
  const out: number[] = [];
  let v = n;
  while (v > 0x7f) {
    out.push((v & 0x7f) | 0x80);
    v >>>= 7;
  }
  out.push(v);
  return out;
}

/** A length-delimited protobuf field. */
function field(num: number, payload: number[]): number[] {
  return [...varint((num << 3) | 2), ...varint(payload.length), ...payload];
}
function str(num: number, s: string): number[] {
  return field(num, [...Buffer.from(s, 'utf8')]);
}
function int(num: number, v: number): number[] {
  return [...varint(num << 3), ...varint(v)];
}

function valueInfo(name: string): number[] {
  // ValueInfoProto{name=1, type=2{tensor_type=1{elem_type=1 (FLOAT), shape=2{dim=1{dim_value=1}}}}}
  const shape = field(2, field(1, int(1, 1)));
  const tensorType = field(1, [...int(1, 1), ...shape]);
  return [...str(1, name), ...field(2, tensorType)];
}

export function probeModelBytes(): Uint8Array {
  const node = [...str(1, 'x'), ...str(2, 'y'), ...str(4, 'Identity')];
  const graph = [
    ...field(1, node),
    ...str(2, 'probe'),
    ...field(11, valueInfo('x')),
    ...field(12, valueInfo('y')),
  ];
  // ModelProto{ir_version=1, graph=7, opset_import=8{version=2}}
  const model = [...int(1, 8), ...field(7, graph), ...field(8, int(2, 17))];
  return Uint8Array.from(model);
}
