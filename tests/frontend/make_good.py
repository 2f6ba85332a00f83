#!/usr/bin/python3
"""Generates tests/frontend/good/<case>/model.onnx (committed): small valid models covering storage
forms and structures the libonnx testdata lacks. load_all compares qopt's summary of each with
onnx_summary.py's, like the testdata models.

    /usr/bin/python3 tests/frontend/make_good.py [OUTDIR]
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "good")
F = TensorProto.FLOAT


def vi(name, et=F, shape=None):
    return helper.make_tensor_value_info(name, et, shape)


def save(case, graph, ir=8, opsets=(("", 13),), **kw):
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets], **kw)
    m.ir_version = ir
    d = os.path.join(OUT, case)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "model.onnx"), "wb") as f:
        f.write(m.SerializeToString())
    return d


def typed(name, dt, dims, field, values):
    t = TensorProto()
    t.name, t.data_type = name, dt
    t.dims.extend(dims)
    getattr(t, field).extend(values)
    return t


def raw(name, dt, dims, b):
    t = TensorProto()
    t.name, t.data_type = name, dt
    t.dims.extend(dims)
    t.raw_data = b
    return t


def identity_graph(inits, name):
    """Each initializer feeds an Identity whose output is a graph output."""
    nodes = [helper.make_node("Identity", [t.name], [t.name + "_out"], name="id_" + t.name) for t in inits]
    outs = [vi(t.name + "_out", t.data_type if t.data_type <= 16 else F, None) for t in inits]
    return helper.make_graph(nodes, name, [], outs, initializer=inits)


def main():
    rng = np.random.default_rng(1)
    # typed fields, one tensor per storage form
    inits = [
        typed("f32", TensorProto.FLOAT, [2, 3], "float_data", rng.standard_normal(6).astype(np.float32).tolist()),
        typed("c64", TensorProto.COMPLEX64, [2], "float_data", [1.0, 2.0, -3.0, 4.5]),
        typed("f64", TensorProto.DOUBLE, [3], "double_data", [1.5, -2.25, 1e300]),
        typed("c128", TensorProto.COMPLEX128, [1], "double_data", [1.0, -1.0]),
        typed("i64", TensorProto.INT64, [4], "int64_data", [1, -2, 2**62, -2**63]),
        typed("u32", TensorProto.UINT32, [2], "uint64_data", [7, 2**32 - 1]),
        typed("u64", TensorProto.UINT64, [2], "uint64_data", [7, 2**64 - 1]),
        typed("i32", TensorProto.INT32, [3], "int32_data", [1, -1, 2**31 - 1]),
        typed("i8", TensorProto.INT8, [3], "int32_data", [-128, 0, 127]),
        typed("u8", TensorProto.UINT8, [3], "int32_data", [0, 1, 255]),
        typed("i16", TensorProto.INT16, [2], "int32_data", [-32768, 32767]),
        typed("u16", TensorProto.UINT16, [2], "int32_data", [0, 65535]),
        typed("b", TensorProto.BOOL, [3], "int32_data", [1, 0, 1]),
        typed("f16", TensorProto.FLOAT16, [3], "int32_data",
              np.array([1.0, -2.5, 65504], dtype=np.float16).view(np.uint16).tolist()),
        typed("bf16", 16, [2], "int32_data", [0x3F80, 0xC020]),
        typed("f8e4m3fn", 17, [2], "int32_data", [0x38, 0xC0]),
        typed("f8e5m2", 19, [2], "int32_data", [0x3C, 0x80]),
        typed("u4", 21, [3], "int32_data", [0x21, 0x03]),   # 1,2,3 packed low nibble first
        typed("i4", 22, [4], "int32_data", [0xF7, 0x18]),   # 7,-1,-8,1
        typed("str", TensorProto.STRING, [2], "string_data", [b"hello", b""]),
        typed("empty", TensorProto.FLOAT, [0, 3], "float_data", []),
        typed("scalar", TensorProto.FLOAT, [], "float_data", [3.5]),
    ]
    save("typed_fields", identity_graph(inits, "typed"))

    rinits = [
        raw("r_f32", F, [2, 2], np.arange(4, dtype="<f4").tobytes()),
        raw("r_f16", TensorProto.FLOAT16, [3], np.array([1, 2, 3], dtype="<f2").tobytes()),
        raw("r_bf16", 16, [2], bytes([0x80, 0x3F, 0x20, 0xC0])),
        raw("r_u4", 21, [3], bytes([0x21, 0x03])),
        raw("r_i4", 22, [1], bytes([0x0F])),
        raw("r_f8", 18, [3], bytes([1, 2, 3])),
        raw("r_i64", TensorProto.INT64, [2], np.array([5, -5], dtype="<i8").tobytes()),
        raw("r_bool", TensorProto.BOOL, [2], bytes([1, 0])),
        raw("r_empty", F, [0], b""),
    ]
    save("raw_data", identity_graph(rinits, "raw"))

    # external data: two tensors in one side file (offset/length given), one in another (no length)
    d = os.path.join(OUT, "external_data")
    os.makedirs(d, exist_ok=True)
    a = np.arange(6, dtype="<f4")
    b = np.arange(4, dtype="<i8") * 3
    with open(os.path.join(d, "weights.bin"), "wb") as f:
        f.write(b"\0" * 16 + a.tobytes() + b"\0" * 8 + b.tobytes())
    with open(os.path.join(d, "w2.bin"), "wb") as f:
        f.write(np.array([9.5, -1], dtype="<f4").tobytes())

    def ext(name, dt, dims, loc, off=None, length=None):
        t = TensorProto()
        t.name, t.data_type = name, dt
        t.dims.extend(dims)
        t.data_location = TensorProto.EXTERNAL
        for k, v in (("location", loc), ("offset", off), ("length", length)):
            if v is not None:
                e = t.external_data.add()
                e.key, e.value = k, str(v)
        return t
    einits = [ext("ea", F, [2, 3], "weights.bin", 16, 24), ext("eb", TensorProto.INT64, [4], "weights.bin", 48, 32),
              ext("ec", F, [2], "w2.bin")]
    save("external_data", identity_graph(einits, "ext"))

    # Constant node forms
    cn = [
        helper.make_node("Constant", [], ["c_t"], name="k1", value=numpy_helper.from_array(np.ones((2, 2), np.float32))),
        helper.make_node("Constant", [], ["c_f"], name="k2", value_float=1.25),
        helper.make_node("Constant", [], ["c_fs"], name="k3", value_floats=[1.0, 2.0]),
        helper.make_node("Constant", [], ["c_i"], name="k4", value_int=-7),
        helper.make_node("Constant", [], ["c_is"], name="k5", value_ints=[1, 2, 3]),
        helper.make_node("Constant", [], ["c_s"], name="k6", value_string="abc"),
        helper.make_node("Constant", [], ["c_ss"], name="k7", value_strings=["a", "bc"]),
    ]
    sp = helper.make_sparse_tensor(helper.make_tensor("sv", F, [2], [1.0, 2.0]),
                                   helper.make_tensor("si", TensorProto.INT64, [2], [1, 5]), [2, 3])
    cn.append(helper.make_node("Constant", [], ["c_sp"], name="k8", sparse_value=sp))
    outs = [n.output[0] for n in cn]
    ids = [helper.make_node("Identity", [o], [o + "_out"], name="id_" + o) for o in outs]
    save("constant_nodes", helper.make_graph(cn + ids, "consts", [], [vi(o + "_out") for o in outs]), opsets=(("", 13),))

    # IR 3 style: initializers also listed as inputs; value_info with symbolic and unknown dims;
    # omitted optional input and output; custom domain and qonnx ops; metadata
    w = numpy_helper.from_array(rng.standard_normal((4, 3)).astype(np.float32), "W")
    sc = numpy_helper.from_array(np.array(0.5, np.float32), "scale")
    zp = numpy_helper.from_array(np.array(0.0, np.float32), "zp")
    bw = numpy_helper.from_array(np.array(8.0, np.float32), "bw")
    nodes = [
        helper.make_node("MatMul", ["x", "W"], ["h"], name="mm"),
        helper.make_node("Quant", ["h", "scale", "zp", "bw"], ["q"], name="quant", domain="qonnx.custom_op.general",
                         signed=1, narrow=0, rounding_mode="ROUND"),
        helper.make_node("Clip", ["q", "", "hi"], ["c"], name="clip"),
        helper.make_node("Dropout", ["c"], ["y", ""], name="drop"),
        helper.make_node("MyOp", ["y"], ["z"], name="custom", domain="com.example", alpha=0.5, names=["a", "b"],
                         t=numpy_helper.from_array(np.array([1, 2], np.int64))),
    ]
    hi = numpy_helper.from_array(np.array(6.0, np.float32), "hi")
    g = helper.make_graph(nodes, "misc", [vi("x", F, ["batch", 4]), vi("W", F, [4, 3]), vi("hi", F, [])],
                          [vi("z", F, ["batch", None])], initializer=[w, sc, zp, bw, hi],
                          value_info=[vi("h", F, ["batch", 3]), vi("q", F, None), vi("c", F, [None, "n"])],
                          doc_string="graph doc")
    m_dir = save("misc", g, ir=7, opsets=(("", 13), ("qonnx.custom_op.general", 1), ("com.example", 2)),
                 producer_name="make_good", producer_version="1.0", doc_string="model doc")
    m = onnx.load(os.path.join(m_dir, "model.onnx"))
    m.model_version = 42
    m.domain = "org.test"
    helper.set_model_props(m, {"author": "qopt", "license": "none"})
    with open(os.path.join(m_dir, "model.onnx"), "wb") as f:
        f.write(m.SerializeToString())

    # If with outer-scope captures and a subgraph initializer; Loop with a nested If
    then_g = helper.make_graph([helper.make_node("Add", ["x", "bias"], ["t"], name="then_add")], "then", [],
                               [vi("t", F, [2])], initializer=[numpy_helper.from_array(np.ones(2, np.float32), "bias")])
    else_g = helper.make_graph([helper.make_node("Mul", ["x", "x"], ["e"], name="else_mul")], "else", [], [vi("e", F, [2])])
    inner_if = helper.make_node("If", ["cond"], ["li"], name="inner_if",
                                then_branch=helper.make_graph([helper.make_node("Neg", ["lv"], ["n1"], name="neg")], "it",
                                                              [], [vi("n1", F, [2])]),
                                else_branch=helper.make_graph([], "ie", [], [vi("x", F, [2])]))
    body = helper.make_graph([helper.make_node("Add", ["lv_in", "x"], ["lv"], name="body_add"), inner_if,
                              helper.make_node("Identity", ["cond"], ["cond_out"], name="body_cond")],
                             "body", [vi("iter", TensorProto.INT64, []), vi("cond_in", TensorProto.BOOL, []), vi("lv_in", F, [2])],
                             [vi("cond_out", TensorProto.BOOL, []), vi("li", F, [2])])
    nodes = [helper.make_node("If", ["cond"], ["r"], name="if1", then_branch=then_g, else_branch=else_g),
             helper.make_node("Loop", ["trip", "", "r"], ["final"], name="loop1", body=body)]
    trip = numpy_helper.from_array(np.array(3, np.int64), "trip")
    save("subgraphs", helper.make_graph(nodes, "sub", [vi("x", F, [2]), vi("cond", TensorProto.BOOL, [])],
                                        [vi("final", F, [2])], initializer=[trip]))

    # sparse initializer (densified by qopt; onnx_summary.py densifies it with numpy)
    spi = helper.make_sparse_tensor(helper.make_tensor("S", F, [3], [1.0, 2.0, 3.0]),
                                    helper.make_tensor("S_idx", TensorProto.INT64, [3], [0, 4, 5]), [2, 3])
    g = helper.make_graph([helper.make_node("Identity", ["S"], ["y"], name="ids")], "sparse", [], [vi("y", F, [2, 3])])
    g.sparse_initializer.append(spi)
    save("sparse_initializer", g)

    # opset 6 (old-style) loads with a warning
    save("old_opset", helper.make_graph([helper.make_node("Relu", ["x"], ["y"], name="r")], "old", [vi("x", F, [1])],
                                        [vi("y", F, [1])]), ir=3, opsets=(("", 6),))


if __name__ == "__main__":
    main()
