#!/usr/bin/env python3
"""Writes a large ONNX model (~100 MB of float32 weights by default) for benchmarks.

Uses only numpy + onnx (no torch), so bench scripts can generate it on demand; the output is not
committed.

    python3 tools/gen_bigmodel.py OUT.onnx [--mb 100] [--dim 2048] [--external] [--opset 13] [--seed 0]

The model is a chain of fully connected layers on a [1, dim] float32 input: layers alternate between
Gemm (transB=1, with bias) and MatMul + Add, each followed by Relu (the last one by nothing). Every
weight is a dim x dim float32 initializer stored as raw_data; the number of layers is chosen so the
weights total about --mb megabytes (10^6 bytes). Weights are scaled by 1/sqrt(dim) so activations
stay O(1). --external stores all tensors in OUT.onnx.data (one file) next to the model.
"""
import argparse
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--mb", type=float, default=100.0, help="approximate weight size in MB (default 100)")
    ap.add_argument("--dim", type=int, default=2048, help="layer width (default 2048)")
    ap.add_argument("--opset", type=int, default=13)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--external", action="store_true", help="save weights as external data (OUT.data)")
    args = ap.parse_args()

    d = args.dim
    per_layer = d * d * 4 + d * 4
    nlayers = max(1, round(args.mb * 1e6 / per_layer))
    rng = np.random.default_rng(args.seed)
    scale = np.float32(1.0 / np.sqrt(d))

    nodes, inits = [], []
    cur = "input"
    for i in range(nlayers):
        w = (rng.standard_normal((d, d), dtype=np.float32) * scale).astype(np.float32)
        b = (rng.standard_normal(d, dtype=np.float32) * np.float32(0.01)).astype(np.float32)
        wn, bn = f"fc{i}.weight", f"fc{i}.bias"
        inits += [numpy_helper.from_array(w, wn), numpy_helper.from_array(b, bn)]
        last = i == nlayers - 1
        y = "output" if last else f"fc{i}_out"
        pre = y if last else f"fc{i}_pre"
        if i % 2 == 0:
            nodes.append(helper.make_node("Gemm", [cur, wn, bn], [pre], name=f"fc{i}", transB=1))
        else:
            nodes.append(helper.make_node("MatMul", [cur, wn], [f"fc{i}_mm"], name=f"fc{i}_matmul"))
            nodes.append(helper.make_node("Add", [f"fc{i}_mm", bn], [pre], name=f"fc{i}_add"))
        if not last:
            nodes.append(helper.make_node("Relu", [pre], [y], name=f"fc{i}_relu"))
        cur = y

    graph = helper.make_graph(nodes, "bigmodel",
                              [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, d])],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, d])], inits)
    model = helper.make_model(graph, producer_name="qopt-gen_bigmodel",
                              opset_imports=[helper.make_opsetid("", args.opset)])
    model.ir_version = 7
    out_dir = os.path.dirname(os.path.abspath(args.out))
    os.makedirs(out_dir, exist_ok=True)
    if args.external:
        loc = os.path.basename(args.out) + ".data"
        onnx.save_model(model, args.out, save_as_external_data=True, all_tensors_to_one_file=True,
                        location=loc, size_threshold=0)
    else:
        onnx.save_model(model, args.out)
    wbytes = nlayers * per_layer
    print(f"wrote {args.out}: {nlayers} layers of {d}x{d}, {wbytes / 1e6:.1f} MB of float32 weights"
          + (f" (external: {loc})" if args.external else ""), file=sys.stderr)


if __name__ == "__main__":
    main()
