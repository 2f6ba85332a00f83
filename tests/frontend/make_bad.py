#!/usr/bin/python3
"""Generates the malformed-input corpus in tests/frontend/bad/ (the generated files are committed).

    /usr/bin/python3 tests/frontend/make_bad.py [OUTDIR]

Writes one small file per case plus expected.txt, one line per case:
    FILE|STATUS|SUBSTRING|SUBSTRING...
load_bad.c loads FILE, requires the status name STATUS (qo_status_str) and every SUBSTRING in the
diagnostics (the file name is always required too)."""
import os
import sys

import onnx
from onnx import TensorProto, helper

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "bad")
cases = []


def model(nodes, inputs=None, outputs=None, inits=(), ir=8, opset=13, name="g"):
    inputs = inputs if inputs is not None else [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])]
    outputs = outputs if outputs is not None else [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])]
    g = helper.make_graph(nodes, name, inputs, outputs, initializer=list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = ir
    return m


def save(fname, m, status, *subs):
    path = os.path.join(OUT, fname)
    if isinstance(m, bytes):
        with open(path, "wb") as f:
            f.write(m)
    else:
        with open(path, "wb") as f:
            f.write(m.SerializeToString())
    cases.append("|".join([fname, status] + list(subs)))


def raw_init(name, dims, nbytes, dtype=TensorProto.FLOAT):
    t = TensorProto()
    t.name = name
    t.data_type = dtype
    t.dims.extend(dims)
    t.raw_data = bytes(range(nbytes % 256)) * (nbytes // 256) + bytes(nbytes % 256) if nbytes >= 256 else bytes(nbytes)
    return t


def ext_init(name, dims, location, offset=None, length=None):
    t = TensorProto()
    t.name = name
    t.data_type = TensorProto.FLOAT
    t.dims.extend(dims)
    t.data_location = TensorProto.EXTERNAL
    for k, v in (("location", location), ("offset", offset), ("length", length)):
        if v is not None:
            e = t.external_data.add()
            e.key, e.value = k, str(v)
    return t


def main():
    os.makedirs(OUT, exist_ok=True)
    add = [helper.make_node("Add", ["x", "w"], ["y"], name="add1")]
    good = model(add, inits=[raw_init("w", [2, 3], 24)])
    gb = good.SerializeToString()

    save("truncated.onnx", gb[: len(gb) - 7], "invalid-model", "malformed or truncated")
    save("text.onnx", b"This is a plain text file, not a model.\nSecond line.\n", "invalid-model", "not an ONNX model")
    save("image.png.onnx", bytes([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 0x0D, 0x49, 0x48, 0x44, 0x52,
                                  0, 0, 0, 1, 0, 0, 0, 1, 8, 6, 0, 0, 0, 0x1F, 0x15, 0xC4, 0x89]),
         "invalid-model", "not an ONNX model")
    save("empty.onnx", b"", "invalid-model", "empty file")
    save("garbage_varint.onnx", b"\x08" + b"\xff" * 12, "invalid-model", "malformed or truncated")

    bad_t = raw_init("w", [2, 3], 24)
    bad_t.data_type = 99
    save("unknown_dtype.onnx", model(add, inits=[bad_t]), "unsupported", "initializer 'w'", "unknown data type 99")
    save("size_mismatch.onnx", model(add, inits=[raw_init("w", [2, 3], 20)]), "invalid-model",
         "initializer 'w'", "raw_data holds 20 bytes, expected 24")
    tf = helper.make_tensor("w", TensorProto.FLOAT, [2, 3], [1.0] * 6)
    del tf.float_data[5]
    save("typed_mismatch.onnx", model(add, inits=[tf]), "invalid-model", "initializer 'w'", "float_data holds 5 values, expected 6")

    save("ext_missing.onnx", model(add, inits=[ext_init("w", [2, 3], "missing_weights.bin")]), "io-error",
         "initializer 'w'", "missing_weights.bin", "cannot open external data file")
    with open(os.path.join(OUT, "ext_short.bin"), "wb") as f:
        f.write(bytes(10))
    save("ext_short.onnx", model(add, inits=[ext_init("w", [2, 3], "ext_short.bin", offset=0, length=24)]), "io-error",
         "initializer 'w'", "ext_short.bin", "too short")
    save("ext_escape.onnx", model(add, inits=[ext_init("w", [2, 3], "../outside.bin")]), "invalid-model",
         "initializer 'w'", "../outside.bin", "relative path")
    save("ext_size.onnx", model(add, inits=[ext_init("w", [2, 3], "ext_short.bin")]), "invalid-model",
         "initializer 'w'", "external data holds 10 bytes, expected 24")

    save("undefined_name.onnx", model([helper.make_node("Add", ["x", "nope"], ["y"], name="add1")]), "invalid-model",
         "node 'add1' (Add)", "input 'nope' is not defined")
    save("undefined_many.onnx", model([helper.make_node("Add", ["ghost1", "ghost2"], ["t"], name="a1"),
                                       helper.make_node("Mul", ["t", "ghost3"], ["y"], name="m1")]), "invalid-model",
         "node 'a1' (Add)", "'ghost1'", "'ghost2'", "node 'm1' (Mul)", "'ghost3'")
    save("undefined_output.onnx", model([helper.make_node("Relu", ["x"], ["t"], name="r")]), "invalid-model",
         "output 'y' is not defined")
    save("cycle.onnx", model([helper.make_node("Add", ["x", "b"], ["a"], name="n1"),
                              helper.make_node("Relu", ["a"], ["b"], name="n2"),
                              helper.make_node("Relu", ["a"], ["y"], name="n3")]), "invalid-model", "cycle")
    save("self_loop.onnx", model([helper.make_node("Add", ["x", "y"], ["y"], name="selfish")]), "invalid-model",
         "node 'selfish' (Add)", "cycle")
    save("duplicate.onnx", model([helper.make_node("Relu", ["x"], ["y"], name="r1"),
                                  helper.make_node("Relu", ["x"], ["y"], name="r2")]), "invalid-model",
         "node 'r2' (Relu)", "'y' is defined more than once")
    save("duplicate_init.onnx", model(add, inits=[raw_init("w", [2, 3], 24), raw_init("w", [2, 3], 24)]),
         "invalid-model", "initializer 'w' is defined more than once")
    save("ir2.onnx", model(add, inits=[raw_init("w", [2, 3], 24)], ir=2), "unsupported", "IR version 2")
    save("ir99.onnx", model(add, inits=[raw_init("w", [2, 3], 24)], ir=99), "unsupported", "IR version 99")
    save("opset99.onnx", model(add, inits=[raw_init("w", [2, 3], 24)], opset=99), "unsupported", "opset 99")

    c = helper.make_node("Constant", [], ["w"], name="c1", value=5)  # 'value' must be a tensor
    save("const_wrong_kind.onnx", model([c] + add), "invalid-model", "node 'c1' (Constant)",
         "attribute 'value' has kind int, expected tensor")
    c = helper.make_node("Constant", [], ["w"], name="c2", value_int=5, value_float=1.0)
    save("const_two_attrs.onnx", model([c] + add), "invalid-model", "node 'c2' (Constant)", "exactly one attribute")
    c = helper.make_node("Constant", [], ["w"], name="c3", value_floats=[1.0])
    c.attribute[0].type = onnx.AttributeProto.STRING
    save("const_floats_as_string.onnx", model([c] + add), "invalid-model", "node 'c3' (Constant)",
         "has kind string, expected floats")

    then_g = helper.make_graph([helper.make_node("Relu", ["ghost"], ["t"], name="inner")], "then",
                               [], [helper.make_tensor_value_info("t", TensorProto.FLOAT, [2, 3])])
    else_g = helper.make_graph([helper.make_node("Relu", ["x"], ["e"], name="inner2")], "else",
                               [], [helper.make_tensor_value_info("e", TensorProto.FLOAT, [2, 3])])
    iff = helper.make_node("If", ["cond"], ["y"], name="if1", then_branch=then_g, else_branch=else_g)
    save("subgraph_undefined.onnx", model([iff], inputs=[helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3]),
                                                         helper.make_tensor_value_info("cond", TensorProto.BOOL, [])]),
         "invalid-model", "node 'inner' (Relu)", "input 'ghost' is not defined")
    iff = helper.make_node("If", ["cond"], ["y"], name="if2", then_branch=5, else_branch=else_g)
    # GRAPH attribute given as an INT: the loader keeps it (the verifier checks kinds), so make it an
    # attribute whose declared kind has no value instead.
    next(a for a in iff.attribute if a.name == "then_branch").type = onnx.AttributeProto.GRAPH
    save("graph_attr_empty.onnx", model([iff], inputs=[helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3]),
                                                       helper.make_tensor_value_info("cond", TensorProto.BOOL, [])]),
         "invalid-model", "node 'if2' (If)", "has no graph")

    with open(os.path.join(OUT, "expected.txt"), "w") as f:
        f.write("\n".join(cases) + "\n")


if __name__ == "__main__":
    main()
