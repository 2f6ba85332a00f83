#!/usr/bin/python3
"""Oracle for tests/frontend/load_all.c: prints a canonical structural summary of ONNX models using
python3-onnx (onnx.load + numpy_helper), in the exact format load_all.c prints from qopt's IR.

    /usr/bin/python3 onnx_summary.py MODEL.onnx...

For each model: a line '== PATH', then the summary (or the single line 'ERROR <message>').
Format (indentation = nesting depth of the graph):
    ir <ir_version>
    opset <domain> <version>                    (file order)
    meta '<producer>' '<version>' '<domain>' <model_version> functions=<n> doc=<crc32>
    prop <key>=<value>                          (metadata_props, file order)
    graph '<name>'
     input <name> <type>                        (file order)
     init <name> <elem> <dims> <nbytes> <crc32> (sorted by name; initializers and default-domain
                                                 Constant node outputs, whose data qopt keeps as constants)
     vi <name> <type>                           (value_info naming a value of this graph, sorted)
     node <domain>:<op_type> '<name>' in=<a,b,> out=<c,>   (file order, Constant nodes excluded)
      attr <name> <kind> <value>                (sorted by name)
      graph <attr> ...                          (subgraph, recursively)
     output <name> <type>
Types: e<elem>[d0,d1] ('?' unknown extent, symbolic names as is, [*] unknown rank), seq(...), opt(...),
map(e<k>,...), sparse e<elem>[...], '-' for none. Tensor bytes are the ONNX raw_data layout (little
endian); strings hash as 8-byte LE length + bytes per element.
"""
import sys
import zlib

import numpy as np
import onnx
from onnx import TensorProto, AttributeProto, numpy_helper

ATTR_KIND = {1: "float", 2: "int", 3: "string", 4: "tensor", 5: "graph", 6: "floats", 7: "ints",
             8: "strings", 9: "tensors", 10: "graphs", 11: "sparse_tensor", 12: "sparse_tensors",
             13: "type_proto", 14: "type_protos", 0: "undef"}


def fmt_f(x):
    return "%.9g" % x


def crc(b):
    return "%08x" % (zlib.crc32(b) & 0xFFFFFFFF)


def str_bytes(strs):
    return b"".join(len(s).to_bytes(8, "little") + bytes(s) for s in strs)


def tensor_bytes(t):
    dt = t.data_type
    if dt == TensorProto.STRING:
        return str_bytes(t.string_data)
    if t.HasField("raw_data"):
        return bytes(t.raw_data)
    if dt == TensorProto.COMPLEX64:  # (real, imag) pairs in float_data
        return np.asarray(t.float_data, dtype="<f4").tobytes()
    if dt == TensorProto.COMPLEX128:
        return np.asarray(t.double_data, dtype="<f8").tobytes()
    if dt == TensorProto.BFLOAT16:
        return np.asarray(t.int32_data, dtype=np.int64).astype("<u2").tobytes()
    if dt in (17, 18, 19, 20):  # float8: one byte per int32_data entry
        return np.asarray(t.int32_data, dtype=np.int64).astype("u1").tobytes()
    if dt in (21, 22, 23):  # 4-bit: one packed byte per int32_data entry
        return np.asarray(t.int32_data, dtype=np.int64).astype("u1").tobytes()
    arr = numpy_helper.to_array(t)
    return np.ascontiguousarray(arr).astype(arr.dtype.newbyteorder("<")).tobytes()


def dims_str(dims):
    return "[" + ",".join(str(d) for d in dims) + "]"


def tensor_summary(t):
    b = tensor_bytes(t)
    return "e%d %s %d %s" % (t.data_type, dims_str(t.dims), len(b) if t.data_type != TensorProto.STRING else len(t.string_data) * 16, crc(b))


def shape_str(shape_holder):
    if not shape_holder.HasField("shape"):
        return "[*]"
    out = []
    for d in shape_holder.shape.dim:
        w = d.WhichOneof("value")
        if w == "dim_value" and d.dim_value >= 0:
            out.append(str(d.dim_value))
        elif w == "dim_param" and d.dim_param:
            out.append(d.dim_param)
        else:
            out.append("?")
    return "[" + ",".join(out) + "]"


def type_str(tp):
    w = tp.WhichOneof("value")
    if w == "tensor_type":
        return "e%d%s" % (tp.tensor_type.elem_type, shape_str(tp.tensor_type))
    if w == "sparse_tensor_type":
        return "sparse e%d%s" % (tp.sparse_tensor_type.elem_type, shape_str(tp.sparse_tensor_type))
    if w == "sequence_type":
        return "seq(%s)" % (type_str(tp.sequence_type.elem_type) if tp.sequence_type.HasField("elem_type") else "-")
    if w == "optional_type":
        return "opt(%s)" % (type_str(tp.optional_type.elem_type) if tp.optional_type.HasField("elem_type") else "-")
    if w == "map_type":
        return "map(e%d,%s)" % (tp.map_type.key_type, type_str(tp.map_type.value_type) if tp.map_type.HasField("value_type") else "-")
    return "-"


def vi_type(vi):
    return type_str(vi.type) if vi.HasField("type") else "-"


def is_const_node(n):
    return n.op_type == "Constant" and n.domain in ("", "ai.onnx") and not any(a.name == "sparse_value" for a in n.attribute)


def const_node_summary(n):
    a = n.attribute[0]
    if a.name == "value":
        return tensor_summary(a.t)
    if a.name == "value_float":
        b = np.array(a.f, dtype="<f4").tobytes(); return "e1 [] %d %s" % (len(b), crc(b))
    if a.name == "value_floats":
        b = np.array(list(a.floats), dtype="<f4").tobytes(); return "e1 [%d] %d %s" % (len(a.floats), len(b), crc(b))
    if a.name == "value_int":
        b = np.array(a.i, dtype="<i8").tobytes(); return "e7 [] %d %s" % (len(b), crc(b))
    if a.name == "value_ints":
        b = np.array(list(a.ints), dtype="<i8").tobytes(); return "e7 [%d] %d %s" % (len(a.ints), len(b), crc(b))
    if a.name == "value_string":
        b = str_bytes([a.s]); return "e8 [] 16 %s" % crc(b)
    if a.name == "value_strings":
        b = str_bytes(a.strings); return "e8 [%d] %d %s" % (len(a.strings), 16 * len(a.strings), crc(b))
    raise ValueError("bad Constant")


def attr_value(a):
    k = a.type
    if k == 1: return fmt_f(a.f)
    if k == 2: return str(a.i)
    if k == 3: return "%d %s" % (len(a.s), crc(a.s))
    if k == 6: return "[" + ",".join(fmt_f(x) for x in a.floats) + "]"
    if k == 7: return "[" + ",".join(str(x) for x in a.ints) + "]"
    if k == 8: return "%d %s" % (len(a.strings), crc(str_bytes(a.strings)))
    if k == 4: return tensor_summary(a.t)
    if k == 9: return "%d" % len(a.tensors)
    if k == 10: return "%d" % len(a.graphs)
    return ""


def graph_lines(g, ind, out):
    p = " " * ind
    out.append("%sgraph '%s'" % (p, g.name))
    defined = set()
    for vi in g.input:
        out.append("%s input %s %s" % (p, vi.name, vi_type(vi)))
        defined.add(vi.name)
    inits = []
    for t in g.initializer:
        inits.append((t.name, tensor_summary(t)))
        defined.add(t.name)
    for sp in g.sparse_initializer:
        vals, idx = numpy_helper.to_array(sp.values), numpy_helper.to_array(sp.indices)
        dense = np.zeros(int(np.prod(sp.dims)), dtype=vals.dtype)
        flat = idx if idx.ndim == 1 else np.ravel_multi_index(tuple(idx.T), tuple(sp.dims))
        dense[flat] = vals
        b = dense.astype(dense.dtype.newbyteorder("<")).tobytes()
        inits.append((sp.values.name, "e%d %s %d %s" % (sp.values.data_type, dims_str(sp.dims), len(b), crc(b))))
        defined.add(sp.values.name)
    for n in g.node:
        if is_const_node(n):
            inits.append((n.output[0], const_node_summary(n)))
        defined.update(o for o in n.output if o)
    for name, s in sorted(inits):
        out.append("%s init %s %s" % (p, name, s))
    vis = {}
    for vi in g.value_info:
        if vi.name in defined:
            vis[vi.name] = vi_type(vi)
    for name in sorted(vis):
        out.append("%s vi %s %s" % (p, name, vis[name]))
    for n in g.node:
        if is_const_node(n):
            continue
        out.append("%s node %s:%s '%s' in=%s out=%s" % (p, n.domain, n.op_type, n.name, ",".join(n.input), ",".join(n.output)))
        for a in sorted(n.attribute, key=lambda a: a.name.encode()):
            out.append("%s  attr %s %s %s" % (p, a.name, ATTR_KIND.get(a.type, "?"), attr_value(a)))
            if a.type == AttributeProto.GRAPH:
                graph_lines(a.g, ind + 2, out)
            elif a.type == AttributeProto.GRAPHS:
                for sg in a.graphs:
                    graph_lines(sg, ind + 2, out)
    for vi in g.output:
        out.append("%s output %s %s" % (p, vi.name, vi_type(vi)))


def summary(path):
    m = onnx.load(path)
    out = ["ir %d" % m.ir_version]
    for o in m.opset_import:
        out.append("opset %s %d" % (o.domain, o.version))
    out.append("meta '%s' '%s' '%s' %d functions=%d doc=%s" % (m.producer_name, m.producer_version, m.domain,
                                                             m.model_version, len(m.functions), crc(m.doc_string.encode())))
    for p in m.metadata_props:
        out.append("prop %s=%s" % (p.key, p.value))
    graph_lines(m.graph, 0, out)
    return out


def main():
    for path in sys.argv[1:]:
        print("== " + path)
        try:
            lines = summary(path)
        except Exception as e:  # noqa: BLE001 - any failure is reported as a line
            lines = ["ERROR %s" % str(e).splitlines()[0] if str(e) else "ERROR %s" % type(e).__name__]
        print("\n".join(lines))


if __name__ == "__main__":
    main()
