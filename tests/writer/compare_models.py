#!/usr/bin/python3
"""tests/writer/compare_models.py — are two ONNX files the same model? Oracle: python3-onnx.

Checks model fields (ir_version, producer, domain, model_version, doc, opset imports, metadata_props,
functions), then each graph recursively (subgraphs in GRAPH/GRAPHS attributes): name, doc, inputs and
outputs in order with their types, initializers in order and bit for bit (numpy_helper.to_array(..)
.tobytes(); raw bytes for types numpy cannot hold), value_info, nodes in order (name, op_type, domain,
doc, input/output names, attributes compared by name: ONNX gives attribute order no meaning and qopt
keeps them sorted), and that onnx.checker.check_model accepts the second (written) file.
Initializers are compared by name (their order has no meaning in ONNX). A default-domain Constant node
(not sparse_value) is the same thing as an initializer named after its output: qopt's frontend turns
them into constants and the writer emits initializers, so both files are normalized that way first. If the
checker rejects the first (original) file with the same message, that is reported as a note, not a
difference. Things qopt does not model are not compared: denotations, TensorProto names/doc inside
attributes, training_info, quantization_annotation.

usage: /usr/bin/python3 compare_models.py ORIGINAL.onnx WRITTEN.onnx   (exit 0 = same, 1 = differ)
"""
import struct
import sys

import numpy as np
import onnx
from onnx import numpy_helper

MAX_DIFFS = 20


class Diff:
    def __init__(self):
        self.items = []
        self.notes = []

    def add(self, where, msg):
        if len(self.items) < MAX_DIFFS:
            self.items.append("%s: %s" % (where, msg))

    def eq(self, where, what, a, b):
        if a != b:
            self.add(where, "%s differs: %r vs %r" % (what, short(a), short(b)))
            return False
        return True


def short(x):
    s = repr(x)
    return s if len(s) < 200 else s[:200] + "..."


def norm_shape(sh):
    dims = []
    for d in sh.dim:
        w = d.WhichOneof("value")
        dims.append(("v", d.dim_value) if w == "dim_value" else ("p", d.dim_param) if w == "dim_param" else None)
    return tuple(dims)


def norm_type(tp):
    w = tp.WhichOneof("value")
    if w is None:
        return None
    if w in ("tensor_type", "sparse_tensor_type"):
        t = getattr(tp, w)
        return (w, t.elem_type, norm_shape(t.shape) if t.HasField("shape") else None)
    if w == "sequence_type":
        return (w, norm_type(tp.sequence_type.elem_type) if tp.sequence_type.HasField("elem_type") else None)
    if w == "optional_type":
        return (w, norm_type(tp.optional_type.elem_type) if tp.optional_type.HasField("elem_type") else None)
    if w == "map_type":
        return (w, tp.map_type.key_type, norm_type(tp.map_type.value_type))
    return (w, tp.SerializeToString())


def norm_vi(vi):
    return (vi.name, norm_type(vi.type) if vi.HasField("type") else None, vi.doc_string)


def tensor_key(t):
    """(data_type, dims, payload) with payload bit-exact."""
    dims = tuple(t.dims)
    if t.data_type == onnx.TensorProto.STRING:
        return (t.data_type, dims, tuple(t.string_data))
    try:
        arr = numpy_helper.to_array(t)
        return (t.data_type, dims, arr.tobytes())
    except Exception:  # element types numpy_helper does not know (int4, float8 in onnx 1.12)
        if t.HasField("raw_data"):
            return (t.data_type, dims, t.raw_data)
        return (t.data_type, dims, t.SerializeToString())


def float_bits(f):
    return struct.pack("<f", f)


def cmp_attr(d, where, a, b):
    d.eq(where, "type", a.type, b.type)
    d.eq(where, "ref_attr_name", a.ref_attr_name, b.ref_attr_name)
    d.eq(where, "doc_string", a.doc_string, b.doc_string)
    if a.ref_attr_name:
        return
    t = a.type
    A = onnx.AttributeProto
    if t == A.FLOAT:
        d.eq(where, "f", float_bits(a.f), float_bits(b.f))
    elif t == A.INT:
        d.eq(where, "i", a.i, b.i)
    elif t == A.STRING:
        d.eq(where, "s", a.s, b.s)
    elif t == A.TENSOR:
        d.eq(where, "t", tensor_key(a.t), tensor_key(b.t))
    elif t == A.GRAPH:
        cmp_graph(d, where + "/g", a.g, b.g)
    elif t == A.FLOATS:
        d.eq(where, "floats", [float_bits(x) for x in a.floats], [float_bits(x) for x in b.floats])
    elif t == A.INTS:
        d.eq(where, "ints", list(a.ints), list(b.ints))
    elif t == A.STRINGS:
        d.eq(where, "strings", list(a.strings), list(b.strings))
    elif t == A.TENSORS:
        d.eq(where, "tensors", [tensor_key(x) for x in a.tensors], [tensor_key(x) for x in b.tensors])
    elif t == A.GRAPHS:
        if d.eq(where, "number of graphs", len(a.graphs), len(b.graphs)):
            for i, (ga, gb) in enumerate(zip(a.graphs, b.graphs)):
                cmp_graph(d, "%s/graphs[%d]" % (where, i), ga, gb)
    elif t == A.SPARSE_TENSOR:
        d.eq(where, "sparse_tensor", a.sparse_tensor, b.sparse_tensor)
    elif t == A.SPARSE_TENSORS:
        d.eq(where, "sparse_tensors", list(a.sparse_tensors), list(b.sparse_tensors))
    elif t == A.TYPE_PROTO:
        d.eq(where, "tp", a.tp, b.tp)
    elif t == A.TYPE_PROTOS:
        d.eq(where, "type_protos", list(a.type_protos), list(b.type_protos))


def cmp_node(d, where, a, b):
    d.eq(where, "op_type", a.op_type, b.op_type)
    d.eq(where, "domain", a.domain, b.domain)
    d.eq(where, "name", a.name, b.name)
    d.eq(where, "doc_string", a.doc_string, b.doc_string)
    d.eq(where, "inputs", list(a.input), list(b.input))
    d.eq(where, "outputs", list(a.output), list(b.output))
    aa = {x.name: x for x in a.attribute}
    ba = {x.name: x for x in b.attribute}
    if d.eq(where, "attribute names", sorted(aa), sorted(ba)):
        for k in sorted(aa):
            cmp_attr(d, "%s.%s" % (where, k), aa[k], ba[k])


CONST_ATTRS = {
    "value_float": (np.float32, False), "value_floats": (np.float32, True),
    "value_int": (np.int64, False), "value_ints": (np.int64, True),
}


def constant_tensor(node):
    """TensorProto equivalent of a default-domain Constant node, or None if it stays a node."""
    if node.op_type != "Constant" or node.domain not in ("", "ai.onnx") or len(node.attribute) != 1:
        return None
    a = node.attribute[0]
    if a.name == "value":
        t = onnx.TensorProto()
        t.CopyFrom(a.t)
    elif a.name in CONST_ATTRS:
        dt, is_list = CONST_ATTRS[a.name]
        v = {"value_float": lambda: a.f, "value_floats": lambda: list(a.floats),
             "value_int": lambda: a.i, "value_ints": lambda: list(a.ints)}[a.name]()
        t = numpy_helper.from_array(np.array(v, dtype=dt))
    elif a.name in ("value_string", "value_strings"):
        t = onnx.TensorProto()
        t.data_type = onnx.TensorProto.STRING
        if a.name == "value_string":
            t.string_data.append(a.s)
        else:
            t.dims.append(len(a.strings))
            t.string_data.extend(a.strings)
    else:
        return None
    t.name = node.output[0]
    t.doc_string = ""
    return t


def normalized(g):
    """(initializers, nodes) of g with Constant nodes turned into initializers."""
    inits = list(g.initializer)
    nodes = []
    for n in g.node:
        t = constant_tensor(n)
        if t is None:
            nodes.append(n)
        else:
            inits.append(t)
    return inits, nodes


def cmp_graph(d, where, a, b):
    d.eq(where, "graph name", a.name, b.name)
    d.eq(where, "graph doc_string", a.doc_string, b.doc_string)
    d.eq(where, "inputs", [norm_vi(v) for v in a.input], [norm_vi(v) for v in b.input])
    d.eq(where, "outputs", [norm_vi(v) for v in a.output], [norm_vi(v) for v in b.output])
    a_init, a_nodes = normalized(a)
    b_init, b_nodes = normalized(b)
    d.eq(where, "initializer names", sorted(t.name for t in a_init), sorted(t.name for t in b_init))
    bi = {t.name: t for t in b_init}
    for t in a_init:
        if t.name in bi:
            u = bi[t.name]
            if tensor_key(t) != tensor_key(u):
                d.add(where, "initializer %r differs (type %d dims %s vs type %d dims %s)"
                      % (t.name, t.data_type, list(t.dims), u.data_type, list(u.dims)))
            d.eq(where, "initializer %r doc_string" % t.name, t.doc_string, u.doc_string)
    d.eq(where, "sparse_initializer", list(a.sparse_initializer), list(b.sparse_initializer))
    d.eq(where, "value_info", sorted(norm_vi(v) for v in a.value_info), sorted(norm_vi(v) for v in b.value_info))
    if d.eq(where, "node count", len(a_nodes), len(b_nodes)):
        for i, (na, nb) in enumerate(zip(a_nodes, b_nodes)):
            cmp_node(d, "%s/node[%d](%s %s)" % (where, i, na.op_type, na.name), na, nb)


def compare(orig_path, written_path):
    """Returns (differences, notes): lists of strings; no differences = same model."""
    d = Diff()
    a = onnx.load(orig_path)
    b = onnx.load(written_path)
    for f in ("ir_version", "producer_name", "producer_version", "domain", "model_version", "doc_string"):
        d.eq("model", f, getattr(a, f), getattr(b, f))
    d.eq("model", "opset_import", [(o.domain, o.version) for o in a.opset_import],
         [(o.domain, o.version) for o in b.opset_import])
    d.eq("model", "metadata_props", [(p.key, p.value) for p in a.metadata_props],
         [(p.key, p.value) for p in b.metadata_props])
    d.eq("model", "functions", list(a.functions), list(b.functions))
    cmp_graph(d, "graph", a.graph, b.graph)
    try:
        onnx.checker.check_model(written_path)
    except Exception as e:  # noqa: BLE001 - the checker raises several types
        msg_b = str(e).strip()
        try:
            onnx.checker.check_model(orig_path)
            d.add("checker", "written file rejected, original accepted: " + msg_b.splitlines()[0])
        except Exception as e2:  # noqa: BLE001
            if str(e2).strip() == msg_b:
                d.notes.append("checker rejects the original too: " + msg_b.splitlines()[0])
            else:
                d.add("checker", "written file rejected: %s (original: %s)"
                      % (msg_b.splitlines()[0], str(e2).strip().splitlines()[0]))
    return d.items, d.notes


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    diffs, notes = compare(sys.argv[1], sys.argv[2])
    for n in notes:
        print("note:", n)
    for x in diffs:
        print("diff:", x)
    print("same" if not diffs else "%d difference(s)" % len(diffs))
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main())
