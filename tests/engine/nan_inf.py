#!/usr/bin/python3
"""tests/engine/nan_inf.py QOPT SRCROOT — NaN and +-Inf inputs through both qopt engines against
onnxruntime.

Builds small models (python3-onnx) whose inputs hold NaN, +Inf, -Inf, +-0, subnormals, +-FLT_MAX
and ordinary numbers, for the elementwise ops (fused into JIT loops), Relu/Clip/Max/Min,
MaxPool/AveragePool/global pools, Softmax/LogSoftmax, reductions, Conv (dense, depthwise, 1x1,
with a fused Relu and a fused residual Add + Relu), Gemm/MatMul and QuantizeLinear. onnxruntime
(tests/ort/run.js: CPU, optimizations off, 1 thread) writes the expected outputs; `qopt run
--engine jit --threads 2` and `qopt run --engine interp` are compared with them: the same NaN
positions, the same infinities, finite values within 1e-5 (relative to max(1, |expected|)),
integers exactly.

Deliberate differences are listed in KNOWN below (case, engine -> why); each must still differ
(so the list stays true) and nothing else may. Prints one line per case and engine, then
"N passed, N failed".
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

NAN, INF = float("nan"), float("inf")
F32MAX = float(np.finfo(np.float32).max)
SPECIAL = [NAN, INF, -INF, 0.0, -0.0, 1.5, -2.5, F32MAX, -F32MAX, 1e-40, -7.0, 0.25]

# Known differences from onnxruntime (docs/PERFORMANCE.md, engine section). The JIT is bit-identical to
# the reference kernels (runtime/ref) here, so both engines differ the same way.
WHY = {
    "erf": "onnxruntime's Erf returns 1 for NaN (its approximation clamps the input); qopt returns qo_erff(NaN) = NaN",
    "maxpool": "a NaN in a MaxPool window is skipped unless it comes first (the reference's v > best); "
               "onnxruntime returns NaN",
    "averagepool": "windows holding both +FLT_MAX and -FLT_MAX: the sum overflows or cancels depending on the "
                   "order (qopt adds in window order, onnxruntime in its own)",
    "reducelogsumexp": "a +Inf in the row gives NaN (the maximum is subtracted first: Inf - Inf) where "
                       "onnxruntime returns Inf",
}
WHY["maxpool_s1"] = WHY["maxpool"]
KNOWN = {(case, engine): why for case, why in WHY.items() for engine in ("jit", "interp")}


def special(shape, seed):
    """Ordinary values with the special ones sprinkled in (every special value appears)."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(int(np.prod(shape))).astype(np.float32)
    idx = rng.permutation(a.size)
    for k, v in enumerate(SPECIAL * max(1, a.size // (4 * len(SPECIAL)))):
        if k < a.size:
            a[idx[k]] = v
    return a.reshape(shape)


def model(name, nodes, inputs, outputs, inits=(), opset=17):
    g = helper.make_graph(nodes, name, [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
                          [helper.make_tensor_value_info(n, t, None) for n, t in outputs],
                          [numpy_helper.from_array(v, k) for k, v in inits])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    # (no onnx.checker: the outputs carry no shape; onnxruntime validates the model)
    return m


def cases():
    F = TensorProto.FLOAT
    out = []
    x8 = special([4, 24], 1)
    y8 = special([4, 24], 2)
    # elementwise (the JIT fuses each into a loop; binary ones see special x special)
    for op in ["Add", "Sub", "Mul", "Div", "Max", "Min", "Pow"]:
        out.append((op.lower(), model(op, [helper.make_node(op, ["x", "y"], ["z"])], [("x", [4, 24]), ("y", [4, 24])],
                                      [("z", F)]), {"x": x8, "y": y8}))
    for op in ["Relu", "Abs", "Neg", "Sqrt", "Exp", "Log", "Tanh", "Sigmoid", "Floor", "Ceil", "Round", "Erf",
               "Reciprocal", "Sign", "Softplus"]:
        out.append((op.lower(), model(op, [helper.make_node(op, ["x"], ["z"])], [("x", [4, 24])], [("z", F)]),
                    {"x": x8}))
    out.append(("leakyrelu", model("l", [helper.make_node("LeakyRelu", ["x"], ["z"], alpha=0.1)], [("x", [4, 24])],
                                   [("z", F)]), {"x": x8}))
    out.append(("clip", model("c", [helper.make_node("Clip", ["x", "lo", "hi"], ["z"])], [("x", [4, 24])], [("z", F)],
                              [("lo", np.array(-1.0, np.float32)), ("hi", np.array(6.0, np.float32))]), {"x": x8}))
    out.append(("clip_nobounds", model("c", [helper.make_node("Clip", ["x"], ["z"])], [("x", [4, 24])], [("z", F)]),
                {"x": x8}))
    # a fused chain: (x + y) * 2 -> Relu
    out.append(("chain_add_mul_relu", model("ch", [helper.make_node("Add", ["x", "y"], ["s"]),
                                                   helper.make_node("Mul", ["s", "two"], ["t"]),
                                                   helper.make_node("Relu", ["t"], ["z"])],
                                            [("x", [4, 24]), ("y", [4, 24])], [("z", F)],
                                            [("two", np.array(2.0, np.float32))]), {"x": x8, "y": y8}))
    # pools
    img = special([2, 3, 8, 8], 3)
    out.append(("maxpool", model("mp", [helper.make_node("MaxPool", ["x"], ["z"], kernel_shape=[3, 3], strides=[2, 2],
                                                         pads=[1, 1, 1, 1])], [("x", [2, 3, 8, 8])], [("z", F)]),
                {"x": img}))
    out.append(("maxpool_s1", model("mp", [helper.make_node("MaxPool", ["x"], ["z"], kernel_shape=[2, 2])],
                                    [("x", [2, 3, 8, 8])], [("z", F)]), {"x": img}))
    out.append(("averagepool", model("ap", [helper.make_node("AveragePool", ["x"], ["z"], kernel_shape=[3, 3],
                                                             pads=[1, 1, 1, 1])], [("x", [2, 3, 8, 8])], [("z", F)]),
                {"x": img}))
    for op in ["GlobalAveragePool", "GlobalMaxPool"]:
        out.append((op.lower(), model(op, [helper.make_node(op, ["x"], ["z"])], [("x", [2, 3, 8, 8])], [("z", F)]),
                    {"x": img}))
    # softmax rows: with NaN, +Inf, two +Inf, all -Inf, Inf and -Inf, ordinary
    rows = np.array([[1, 2, NAN, 3], [1, INF, 2, 3], [INF, INF, 0, 1], [-INF, -INF, -INF, -INF], [INF, -INF, 0, 1],
                     [1, 2, 3, 4], [F32MAX, F32MAX, 0, 0], [-F32MAX, 0, 1e-40, -0.0]], np.float32)
    for op in ["Softmax", "LogSoftmax"]:
        out.append((op.lower(), model(op, [helper.make_node(op, ["x"], ["z"], axis=-1)], [("x", [8, 4])], [("z", F)]),
                    {"x": rows}))
    # reductions over the last axis of the same rows (ReduceSum takes its axes as an input at opset 13)
    out.append(("reducesum", model("rs", [helper.make_node("ReduceSum", ["x", "ax"], ["z"], keepdims=0)],
                                   [("x", [8, 4])], [("z", F)], [("ax", np.array([1], np.int64))], opset=13),
                {"x": rows}))
    for op in ["ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceSumSquare", "ReduceL2",
               "ReduceLogSumExp"]:
        out.append((op.lower(), model(op, [helper.make_node(op, ["x"], ["z"], axes=[1], keepdims=0)], [("x", [8, 4])],
                                      [("z", F)], opset=13), {"x": rows}))
    # Conv: dense 3x3, depthwise 3x3 (the padded fast path), 1x1, fused Relu, fused Add + Relu
    rng = np.random.default_rng(4)
    w = (rng.standard_normal([4, 3, 3, 3]) * 0.3).astype(np.float32)
    b = (rng.standard_normal([4]) * 0.1).astype(np.float32)
    wd = (rng.standard_normal([3, 1, 3, 3]) * 0.3).astype(np.float32)
    w1 = (rng.standard_normal([4, 3, 1, 1]) * 0.3).astype(np.float32)
    cv = dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    out.append(("conv", model("cv", [helper.make_node("Conv", ["x", "w", "b"], ["z"], **cv)], [("x", [2, 3, 8, 8])],
                              [("z", F)], [("w", w), ("b", b)]), {"x": img}))
    out.append(("conv_depthwise", model("dw", [helper.make_node("Conv", ["x", "w"], ["z"], group=3, **cv)],
                                        [("x", [2, 3, 8, 8])], [("z", F)], [("w", wd)]), {"x": img}))
    wdi = wd.copy()
    wdi[1, 0, 1, 1] = INF  # an infinite weight: padded taps must not turn into 0 * Inf
    out.append(("conv_depthwise_infweight", model("dwi", [helper.make_node("Conv", ["x", "w"], ["z"], group=3, **cv)],
                                                  [("x", [2, 3, 8, 8])], [("z", F)], [("w", wdi)]),
                {"x": rng.standard_normal([2, 3, 8, 8]).astype(np.float32)}))
    out.append(("conv_1x1", model("c1", [helper.make_node("Conv", ["x", "w"], ["z"])], [("x", [2, 3, 8, 8])],
                                  [("z", F)], [("w", w1)]), {"x": img}))
    out.append(("conv_relu", model("cr", [helper.make_node("Conv", ["x", "w", "b"], ["c"], **cv),
                                          helper.make_node("Relu", ["c"], ["z"])], [("x", [2, 3, 8, 8])], [("z", F)],
                                   [("w", w), ("b", b)]), {"x": img}))
    out.append(("conv_add_relu", model("car", [helper.make_node("Conv", ["x", "w", "b"], ["c"], **cv),
                                               helper.make_node("Add", ["c", "r"], ["s"]),
                                               helper.make_node("Relu", ["s"], ["z"])],
                                       [("x", [2, 3, 8, 8]), ("r", [2, 4, 8, 8])], [("z", F)], [("w", w), ("b", b)]),
                {"x": img, "r": special([2, 4, 8, 8], 5)}))
    out.append(("conv_clip", model("cc", [helper.make_node("Conv", ["x", "w", "b"], ["c"], **cv),
                                          helper.make_node("Clip", ["c", "lo", "hi"], ["z"])], [("x", [2, 3, 8, 8])],
                                   [("z", F)], [("w", w), ("b", b), ("lo", np.array(0.0, np.float32)),
                                                ("hi", np.array(6.0, np.float32))]), {"x": img}))
    # Gemm / MatMul (+ fused bias Add and Relu)
    a = special([6, 16], 6)
    wb = (rng.standard_normal([16, 5]) * 0.3).astype(np.float32)
    out.append(("gemm", model("gm", [helper.make_node("Gemm", ["a", "w", "c"], ["z"])], [("a", [6, 16])], [("z", F)],
                              [("w", wb), ("c", b[:1].repeat(5))]), {"a": a}))
    out.append(("matmul_add_relu", model("mm", [helper.make_node("MatMul", ["a", "w"], ["m"]),
                                                helper.make_node("Add", ["m", "c"], ["s"]),
                                                helper.make_node("Relu", ["s"], ["z"])], [("a", [6, 16])], [("z", F)],
                                         [("w", wb), ("c", b[:1].repeat(5))]), {"a": a}))
    # QuantizeLinear to uint8 / int8 (scale 0.05, zero points 128 / 0), and back
    for elem, zp in [(TensorProto.UINT8, np.array(128, np.uint8)), (TensorProto.INT8, np.array(0, np.int8))]:
        nm = "quantizelinear_" + ("u8" if elem == TensorProto.UINT8 else "i8")
        out.append((nm, model("q", [helper.make_node("QuantizeLinear", ["x", "s", "zp"], ["z"])], [("x", [4, 24])],
                              [("z", elem)], [("s", np.array(0.05, np.float32)), ("zp", zp)], opset=13), {"x": x8}))
    return out


def compare(got, want):
    """None if got matches want (NaN positions, infinities, finite values within 1e-5), else why."""
    if got.shape != want.shape or got.dtype != want.dtype:
        return f"shape/type {got.dtype}{list(got.shape)} vs {want.dtype}{list(want.shape)}"
    if want.dtype.kind != "f":
        bad = np.flatnonzero(got != want)
        return None if bad.size == 0 else f"{bad.size} integers differ, first at {bad[0]}: {got.flat[bad[0]]} vs {want.flat[bad[0]]}"
    gn, wn = np.isnan(got), np.isnan(want)
    if (gn != wn).any():
        i = np.flatnonzero(gn != wn)[0]
        return f"NaN mismatch at {i}: got {got.flat[i]}, onnxruntime {want.flat[i]}"
    gi, wi = np.isinf(got), np.isinf(want)
    if (gi != wi).any() or (got[gi] != want[wi]).any():
        i = np.flatnonzero((gi != wi) | (gi & (got != want)))[0]
        return f"Inf mismatch at {i}: got {got.flat[i]}, onnxruntime {want.flat[i]}"
    fin = ~(gn | gi)
    err = np.abs(got[fin].astype(np.float64) - want[fin]) / np.maximum(1.0, np.abs(want[fin].astype(np.float64)))
    if err.size and err.max() > 1e-5:
        i = np.flatnonzero(fin)[int(err.argmax())]
        return f"value at {i}: got {got.flat[i]!r}, onnxruntime {want.flat[i]!r}"
    return None


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: nan_inf.py QOPT SRCROOT")
    qopt, root = sys.argv[1], sys.argv[2]
    runjs = os.path.join(root, "tests", "ort", "run.js")
    if not os.path.isdir(os.path.join(root, "tests", "ort", "node_modules", "onnxruntime-node")):
        print("SKIP: onnxruntime-node is not installed (cd tests/ort && npm install --ignore-scripts)")
        sys.exit(77)
    passed = failed = 0
    seen_known = set()
    with tempfile.TemporaryDirectory() as tmp:
        for name, m, feeds in cases():
            d = os.path.join(tmp, name)
            os.makedirs(os.path.join(d, "in"))
            path = os.path.join(d, "model.onnx")
            onnx.save(m, path)
            args = []
            for k, v in feeds.items():
                f = os.path.join(d, "in", k + ".npy")
                np.save(f, v)
                args += ["--input", f"{k}={f}"]
            r = subprocess.run(["node", runjs, path, "--out-dir", os.path.join(d, "ort")] + args, capture_output=True,
                               text=True)
            if r.returncode != 0:
                print(f"FAIL {name}: onnxruntime: {r.stderr.strip()[:300]}")
                failed += 1
                continue
            want = np.load(os.path.join(d, "ort", "z.npy"))
            for engine in ["jit", "interp"]:
                od = os.path.join(d, engine)
                cmd = [qopt, "run", path, "--output-dir", od, "--engine", engine] + args
                if engine == "jit":
                    cmd += ["--threads", "2"]
                r = subprocess.run(cmd, capture_output=True, text=True)
                why = f"qopt run failed: {r.stderr.strip()[:300]}" if r.returncode else compare(
                    np.load(os.path.join(od, "z.npy")), want)
                known = KNOWN.get((name, engine))
                if known:
                    seen_known.add((name, engine))
                if why is None and known is None:
                    passed += 1
                elif why is not None and known is not None:
                    print(f"ok   {name} [{engine}]: deliberate difference ({known}): {why}")
                    passed += 1
                elif why is None:
                    print(f"FAIL {name} [{engine}]: listed as a deliberate difference ({known}) but now agrees: update KNOWN")
                    failed += 1
                else:
                    print(f"FAIL {name} [{engine}]: {why}")
                    failed += 1
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
