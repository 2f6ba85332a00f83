#!/usr/bin/python3
"""Exports the execution-engine benchmark models (not committed) into a directory, default
/tmp/qopt-bench:

  resnet18.onnx      torchvision ResNet-18 layout, full width (64), 1000 classes, 3x224x224
  mobilenetv2.onnx   torchvision MobileNetV2 layout, width 1.0, 1000 classes, 3x224x224
  transformer.onnx   post-LN encoder block (tools/gen_models.py EncoderBlock), d_model 256,
                     4 heads, d_ff 1024, sequence 128
  conv_*.onnx        single Conv nodes (with bias): the distinct conv layers of ResNet-18 at
                     224x224 plus two MobileNetV2 layers (depthwise 3x3, pointwise 1x1)

All with a symbolic batch dimension, opset 17, exported in eval mode with constant folding (so
BatchNormalization is folded into the convolutions, as a deployed model would be). The module
definitions are the ones of tools/gen_models.py. Run with Debian's python (torch + onnx):

    /usr/bin/python3 bench/gen_engine_models.py [--out DIR]
"""
import argparse
import os
import sys

import onnx
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import gen_models as gm  # noqa: E402


def export(model, shape, path):
    model.eval()
    x = torch.randn(*shape)
    torch.onnx.export(model, (x,), path, opset_version=17, input_names=["input"], output_names=["output"],
                      dynamic_axes={"input": {0: "N"}, "output": {0: "N"}}, do_constant_folding=True,
                      training=torch.onnx.TrainingMode.EVAL)
    onnx.checker.check_model(onnx.load(path))
    return path


# name: (C, M, kernel, stride, pad, group, H)
CONV_LAYERS = {
    "r18_conv1": (3, 64, 7, 2, 3, 1, 224),
    "r18_l1_3x3": (64, 64, 3, 1, 1, 1, 56),
    "r18_l2_3x3s2": (64, 128, 3, 2, 1, 1, 56),
    "r18_l2_3x3": (128, 128, 3, 1, 1, 1, 28),
    "r18_l2_ds1x1": (64, 128, 1, 2, 0, 1, 56),
    "r18_l3_3x3s2": (128, 256, 3, 2, 1, 1, 28),
    "r18_l3_3x3": (256, 256, 3, 1, 1, 1, 14),
    "r18_l4_3x3s2": (256, 512, 3, 2, 1, 1, 14),
    "r18_l4_3x3": (512, 512, 3, 1, 1, 1, 7),
    "mv2_dw3x3": (144, 144, 3, 1, 1, 144, 56),
    "mv2_pw1x1": (24, 144, 1, 1, 0, 1, 56),
}


def gen_conv_layer(out, name, cfg):
    from onnx import TensorProto, helper, numpy_helper
    import numpy as np
    C, M, k, s, p, g, H = cfg
    rng = np.random.default_rng(sum(map(ord, name)))
    w = (rng.standard_normal((M, C // g, k, k)) * 0.1).astype(np.float32)
    b = (rng.standard_normal(M) * 0.1).astype(np.float32)
    node = helper.make_node("Conv", ["input", "w", "b"], ["output"], kernel_shape=[k, k], strides=[s, s],
                            pads=[p] * 4, group=g)
    graph = helper.make_graph([node], name, [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", C, H, H])],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", M, None, None])],
                              [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    path = os.path.join(out, f"conv_{name}.onnx")
    onnx.save(m, path)
    return path


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="/tmp/qopt-bench")
    ap.add_argument("--only", default="", help="comma-separated: resnet18,mobilenetv2,transformer,conv")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    only = set(filter(None, args.only.split(",")))
    torch.manual_seed(0)
    jobs = [
        ("resnet18", lambda: gm.ResNet18(width=64, num_classes=1000), (1, 3, 224, 224)),
        ("mobilenetv2", lambda: gm.MobileNetV2(width_mult=1.0, num_classes=1000), (1, 3, 224, 224)),
        ("transformer", lambda: gm.EncoderBlock(d_model=256, heads=4, d_ff=1024), (1, 128, 256)),
    ]
    if not only or "conv" in only:
        for name, cfg in CONV_LAYERS.items():
            gen_conv_layer(args.out, name, cfg)
    for name, make, shape in jobs:
        if only and name not in only:
            continue
        model = make()
        if name != "transformer":
            gm.randomize_bn(model, 7)
        p = export(model, shape, os.path.join(args.out, name + ".onnx"))
        ops = {}
        for n in onnx.load(p).graph.node:
            ops[n.op_type] = ops.get(n.op_type, 0) + 1
        print(f"{p}: {sum(ops.values())} nodes {dict(sorted(ops.items()))}")


if __name__ == "__main__":
    main()
