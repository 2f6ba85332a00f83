#!/usr/bin/python3
"""tests/writer/check_built.py — runs build_models (C, ir.h builder API + qo_onnx_write) into a temp
directory and checks every written file with python3-onnx: onnx.checker plus the exact contents the C
program put in (values written here by hand from build_models.c, not read back from the writer).

usage: /usr/bin/python3 check_built.py path/to/writer_build_models
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import helper, numpy_helper

failures = []
passed = [0]


def check(cond, msg):
    if cond:
        passed[0] += 1
    else:
        failures.append(msg)
        print("FAIL:", msg)


def attr_map(node):
    return {a.name: a for a in node.attribute}


def dims_of(vi):
    out = []
    for d in vi.type.tensor_type.shape.dim:
        w = d.WhichOneof("value")
        out.append(d.dim_param if w == "dim_param" else d.dim_value if w == "dim_value" else None)
    return out


def check_basic(path, all_vi):
    m = onnx.load(path)
    onnx.checker.check_model(m)
    check(m.ir_version == 8, "ir_version")
    check(m.producer_name == "qopt-test" and m.producer_version == "1.2", "producer")
    check(m.domain == "ai.qopt.test" and m.model_version == 3 and m.doc_string == "model doc", "model fields")
    check([(o.domain, o.version) for o in m.opset_import] == [("", 13), ("com.qopt.custom", 1), ("qo.test", 1)],
          "opsets %s" % m.opset_import)
    check([(p.key, p.value) for p in m.metadata_props] == [("k1", "v1"), ("author", "qopt")], "metadata")
    check(len(m.functions) == 1 and m.functions[0].name == "MyRelu" and m.functions[0].domain == "qo.test"
          and m.functions[0].node[0].op_type == "Relu" and m.functions[0].doc_string == "a function", "function")
    g = m.graph
    check(g.name == "main" and g.doc_string == "graph doc", "graph name/doc")
    check([i.name for i in g.input] == ["X", "B", "cond"], "inputs %s" % [i.name for i in g.input])
    check(dims_of(g.input[0]) == ["N", 3] and g.input[0].type.tensor_type.elem_type == 1, "X type")
    check(g.input[0].doc_string == "input doc", "X doc")
    check(g.input[2].type.tensor_type.elem_type == 9 and g.input[2].type.tensor_type.HasField("shape")
          and len(g.input[2].type.tensor_type.shape.dim) == 0, "cond scalar bool")
    inits = {t.name: t for t in g.initializer}
    check([t.name for t in g.initializer] == ["W", "S", "Q4", "H", "E", "SC", "B"],
          "initializer order %s" % [t.name for t in g.initializer])
    w = numpy_helper.to_array(inits["W"])
    check(w.dtype == np.float32 and w.shape == (3, 3)
          and np.array_equal(w, (np.arange(9, dtype=np.float32) * 0.5 - 1).reshape(3, 3)), "W values")
    check(inits["W"].doc_string == "weights", "W doc")
    check(inits["W"].HasField("raw_data"), "W in raw_data")
    s = inits["S"]
    check(s.data_type == 8 and list(s.string_data) == [b"ab", b"c\0d", b""], "S strings %s" % list(s.string_data))
    q = inits["Q4"]
    check(q.data_type == 22 and list(q.dims) == [5] and q.raw_data == bytes([0x21, 0x43, 0x0d]), "int4 packed")
    h = numpy_helper.to_array(inits["H"])
    check(h.dtype == np.float16 and list(h) == [1.0, -2.0], "f16")
    e = numpy_helper.to_array(inits["E"])
    check(e.dtype == np.int64 and e.shape == (0,), "empty")
    sc = numpy_helper.to_array(inits["SC"])
    check(sc.dtype == np.float64 and sc.shape == () and float(sc) == 2.5, "scalar f64")
    check(np.array_equal(numpy_helper.to_array(inits["B"]), np.array([1, 2, 3], np.float32)), "input default B")

    # anonymous MatMul result: "qo_0" is taken by Add's result, so it must get another fresh name
    nodes = list(g.node)
    check([n.op_type for n in nodes] == ["MatMul", "Add", "Foo", "If", "MyRelu"], "node order")
    mm, add, foo, iff, fc = nodes
    anon = mm.output[0]
    check(anon.startswith("qo_") and anon != "qo_0", "fresh name %r" % anon)
    check(list(mm.input) == ["X", "W"] and mm.name == "mm" and mm.doc_string == "node doc", "mm")
    check(list(add.input) == [anon, "B"] and list(add.output) == ["qo_0"], "add")
    check(foo.domain == "com.qopt.custom" and list(foo.input) == ["qo_0", "", "W"]
          and list(foo.output) == ["Z", "", "Z2"], "foo io %s %s" % (foo.input, foo.output))
    a = attr_map(foo)
    check(sorted(a) == sorted(["f", "i", "s", "t", "floats", "ints", "strings", "tensors", "sparse", "sparses",
                               "tp", "tps"]), "attr names %s" % sorted(a))
    check(a["f"].type == 1 and a["f"].f == 1.5, "f")
    check(a["i"].type == 2 and a["i"].i == -7, "i")
    check(a["s"].type == 3 and a["s"].s == b"he\0llo", "s")
    check(a["t"].type == 4 and np.array_equal(numpy_helper.to_array(a["t"].t), np.array([4, 5], np.int64))
          and a["t"].doc_string == "attr doc", "t")
    check(a["floats"].type == 6 and list(a["floats"].floats) == [1.0, 2.5], "floats")
    check(a["ints"].type == 7 and list(a["ints"].ints) == [1, -2, 3], "ints")
    check(a["strings"].type == 8 and list(a["strings"].strings) == [b"a", b"bc"], "strings")
    check(a["tensors"].type == 9 and len(a["tensors"].tensors) == 2
          and np.array_equal(numpy_helper.to_array(a["tensors"].tensors[1]), w), "tensors")
    for sp in [a["sparse"].sparse_tensor] + list(a["sparses"].sparse_tensors):
        check(list(sp.dims) == [5] and list(numpy_helper.to_array(sp.values)) == [1.5, -2.0]
              and list(numpy_helper.to_array(sp.indices)) == [1, 3], "sparse tensor")
    check(a["sparse"].type == 11 and a["sparses"].type == 12 and len(a["sparses"].sparse_tensors) == 2, "sparse kinds")
    check(a["tp"].type == 13 and a["tp"].tp.tensor_type.elem_type == 1
          and a["tp"].tp.tensor_type.shape.dim[0].dim_value == 2, "type proto")
    check(a["tps"].type == 14 and [t.tensor_type.elem_type for t in a["tps"].type_protos] == [3, 2], "type protos")

    ia = attr_map(iff)
    tb, eb = ia["then_branch"].g, ia["else_branch"].g
    check(tb.name == "then_body" and [n.op_type for n in tb.node] == ["Identity"] and list(tb.node[0].input) == ["W"]
          and [o.name for o in tb.output] == ["then_out"] and len(tb.input) == 0, "then body")
    check([n.op_type for n in eb.node] == ["Neg", "Identity"] and list(eb.node[0].input) == ["W"], "else body")
    e_anon = eb.node[0].output[0]
    check(e_anon.startswith("qo_") and e_anon not in (anon, "qo_0") and list(eb.node[1].input) == [e_anon],
          "else anon %r" % e_anon)
    check(list(fc.input) == ["qo_0"] and fc.domain == "qo.test", "function call")

    check([o.name for o in g.output] == ["qo_0", "Z", "R", "F"], "outputs")
    check(dims_of(g.output[0]) == ["N", 3], "output type")
    vi = {v.name: v for v in g.value_info}
    if all_vi:
        check(anon in vi and "Z" not in vi, "value_info_all %s" % sorted(vi))
    else:
        check(list(vi) == [anon] and dims_of(vi[anon]) == ["N", 3], "value_info %s" % sorted(vi))
    return m


def check_ext(d):
    p = os.path.join(d, "ext.onnx")
    raw = onnx.load(p, load_external_data=False)
    big = [t for t in raw.graph.initializer if t.name in ("big1", "big2")]
    for t in big:
        ed = {e.key: e.value for e in t.external_data}
        check(t.data_location == onnx.TensorProto.EXTERNAL and ed["location"] == "ext.onnx.data"
              and ed["length"] == "256", "external entry %s" % ed)
    check(big[0].external_data[1].value == big[1].external_data[1].value, "shared constant written once")
    check(os.path.getsize(os.path.join(d, "ext.onnx.data")) == 256, "side file size")
    small = [t for t in raw.graph.initializer if t.name == "small"][0]
    check(small.HasField("raw_data") and small.data_location != onnx.TensorProto.EXTERNAL, "small stays inline")
    m = onnx.load(p)
    onnx.checker.check_model(p)
    vals = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
    ref = np.arange(64, dtype=np.float32) * 0.25
    check(np.array_equal(vals["big1"], ref) and np.array_equal(vals["big2"], ref), "external values")
    check(np.array_equal(vals["small"], np.array([7, 8], np.float32)), "small values")
    inline = onnx.load(os.path.join(d, "inline.onnx"))
    check(all(t.HasField("raw_data") for t in inline.graph.initializer), "inline.onnx all inline")


def check_refattr(d):
    m = onnx.load(os.path.join(d, "refattr.onnx"))
    a = m.graph.node[0].attribute[0]
    check(a.name == "alpha" and a.ref_attr_name == "outer_alpha" and a.type == 1 and not a.HasField("f"),
          "ref attr %s" % a)


def main():
    exe = sys.argv[1]
    with tempfile.TemporaryDirectory() as d:
        r = subprocess.run([exe, d], capture_output=True, text=True)
        sys.stdout.write(r.stdout)
        sys.stderr.write(r.stderr)
        check(r.returncode == 0, "build_models exited %d" % r.returncode)
        check_basic(os.path.join(d, "basic.onnx"), False)
        check_basic(os.path.join(d, "basic_vi.onnx"), True)
        check_ext(d)
        check_refattr(d)
        left = sorted(os.listdir(d))
        check(left == ["basic.onnx", "basic_vi.onnx", "err", "ext.onnx", "ext.onnx.data", "inline.onnx",
                       "refattr.onnx"], "files left: %s" % left)
    print("%d passed, %d failed" % (passed[0], len(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
