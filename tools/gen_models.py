#!/usr/bin/python3
"""Generates qopt's committed test models into tests/models/ (deterministic: fixed seeds).

Run with Debian's python (needs python3-torch, python3-onnx, python3-numpy):

    /usr/bin/python3 tools/gen_models.py [--out tests/models] [--only NAME[,NAME...]]

CI does not have torch, so the outputs are committed. For every model NAME.onnx it also writes one
deterministic input per graph input as NAME.in/<input name>.npy (for extdata/model.onnx:
extdata/model.in/). Reference outputs are not stored: tests/ort/compare.js computes them with
onnxruntime at test time.
"""
import argparse
import os
import shutil
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError:  # the helper-built models still work without torch
    torch = None

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def sanitize(name):
    s = "".join(c if (c.isalnum() and c.isascii()) or c in "_.-" else "_" for c in name)
    return "_" + s if s in ("", ".", "..") else s


def rand_input(shape, dtype, seed):
    rng = np.random.default_rng(seed)
    if np.issubdtype(dtype, np.floating):
        return np.clip(rng.standard_normal(shape) * 0.5, -1.0, 1.0).astype(dtype)
    if dtype == np.bool_:
        return rng.integers(0, 2, size=shape).astype(np.bool_)
    return rng.integers(0, 4, size=shape).astype(dtype)


def write_inputs(model_path, inputs):
    """inputs: dict name -> np.ndarray, written as <model minus .onnx>.in/<name>.npy"""
    d = model_path[:-5] + ".in"
    if os.path.isdir(d):
        shutil.rmtree(d)
    os.makedirs(d)
    for name, arr in inputs.items():
        np.save(os.path.join(d, sanitize(name) + ".npy"), arr)


# ---- torch modules -------------------------------------------------------------------------------
if torch is not None:

    class BasicBlock(nn.Module):
        expansion = 1

        def __init__(self, inplanes, planes, stride=1):
            super().__init__()
            self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(planes)
            self.relu = nn.ReLU(inplace=True)
            self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(planes)
            self.downsample = None
            if stride != 1 or inplanes != planes:
                self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride, bias=False),
                                                nn.BatchNorm2d(planes))

        def forward(self, x):
            identity = x if self.downsample is None else self.downsample(x)
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            return self.relu(out + identity)

    class ResNet18(nn.Module):
        """torchvision resnet18 layout (BasicBlock, [2, 2, 2, 2]) with a configurable base width."""

        def __init__(self, width=16, num_classes=100):
            super().__init__()
            w = [width, width * 2, width * 4, width * 8]
            self.conv1 = nn.Conv2d(3, w[0], 7, 2, 3, bias=False)
            self.bn1 = nn.BatchNorm2d(w[0])
            self.relu = nn.ReLU(inplace=True)
            self.maxpool = nn.MaxPool2d(3, 2, 1)
            inpl = w[0]
            layers = []
            for i, planes in enumerate(w):
                stride = 1 if i == 0 else 2
                layers.append(nn.Sequential(BasicBlock(inpl, planes, stride), BasicBlock(planes, planes)))
                inpl = planes
            self.layer1, self.layer2, self.layer3, self.layer4 = layers
            self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
            self.fc = nn.Linear(w[3], num_classes)

        def forward(self, x):
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            return self.fc(torch.flatten(self.avgpool(x), 1))

    def _make_divisible(v, divisor=8, min_value=None):
        min_value = min_value or divisor
        new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
        if new_v < 0.9 * v:
            new_v += divisor
        return new_v

    class ConvBNReLU6(nn.Sequential):
        def __init__(self, inp, out, k=3, stride=1, groups=1):
            super().__init__(nn.Conv2d(inp, out, k, stride, (k - 1) // 2, groups=groups, bias=False),
                             nn.BatchNorm2d(out), nn.ReLU6(inplace=True))

    class InvertedResidual(nn.Module):
        def __init__(self, inp, oup, stride, expand_ratio):
            super().__init__()
            hidden = int(round(inp * expand_ratio))
            self.use_res = stride == 1 and inp == oup
            layers = []
            if expand_ratio != 1:
                layers.append(ConvBNReLU6(inp, hidden, k=1))
            layers += [ConvBNReLU6(hidden, hidden, stride=stride, groups=hidden),  # depthwise
                       nn.Conv2d(hidden, oup, 1, 1, 0, bias=False), nn.BatchNorm2d(oup)]
            self.conv = nn.Sequential(*layers)

        def forward(self, x):
            return x + self.conv(x) if self.use_res else self.conv(x)

    class MobileNetV2(nn.Module):
        """torchvision mobilenet_v2 layout with a width multiplier."""

        def __init__(self, width_mult=0.5, num_classes=100):
            super().__init__()
            cfg = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2],
                   [6, 96, 3, 1], [6, 160, 3, 2], [6, 320, 1, 1]]
            inp = _make_divisible(32 * width_mult)
            self.last_channel = _make_divisible(1280 * max(1.0, width_mult))
            feats = [ConvBNReLU6(3, inp, stride=2)]
            for t, c, n, s in cfg:
                out = _make_divisible(c * width_mult)
                for i in range(n):
                    feats.append(InvertedResidual(inp, out, s if i == 0 else 1, t))
                    inp = out
            feats.append(ConvBNReLU6(inp, self.last_channel, k=1))
            self.features = nn.Sequential(*feats)
            self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(self.last_channel, num_classes))

        def forward(self, x):
            x = self.features(x)
            x = F.adaptive_avg_pool2d(x, (1, 1))
            return self.classifier(torch.flatten(x, 1))

    class EncoderBlock(nn.Module):
        """Post-LN transformer encoder block with explicit multi-head attention (MatMul/Softmax)."""

        def __init__(self, d_model=32, heads=4, d_ff=64):
            super().__init__()
            self.h, self.dk = heads, d_model // heads
            self.q = nn.Linear(d_model, d_model)
            self.k = nn.Linear(d_model, d_model)
            self.v = nn.Linear(d_model, d_model)
            self.o = nn.Linear(d_model, d_model)
            self.ln1 = nn.LayerNorm(d_model)
            self.ln2 = nn.LayerNorm(d_model)
            self.ff1 = nn.Linear(d_model, d_ff)
            self.ff2 = nn.Linear(d_ff, d_model)
            self.gelu = nn.GELU()

        def split(self, x):  # [B, S, D] -> [B, H, S, dk]
            b, s, _ = x.shape
            return x.reshape(b, s, self.h, self.dk).transpose(1, 2)

        def forward(self, x):
            b, s, d = x.shape
            q, k, v = self.split(self.q(x)), self.split(self.k(x)), self.split(self.v(x))
            att = torch.softmax(torch.matmul(q, k.transpose(-2, -1)) / (self.dk ** 0.5), dim=-1)
            ctx = torch.matmul(att, v).transpose(1, 2).reshape(b, s, d)
            x = self.ln1(x + self.o(ctx))
            return self.ln2(x + self.ff2(self.gelu(self.ff1(x))))

    class Tiny(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding=1)
            self.fc = nn.Linear(4 * 8 * 8, 10)

        def forward(self, x):
            return self.fc(torch.flatten(torch.relu(self.conv(x)), 1))


def randomize_bn(model, seed):
    """BatchNorm running stats / affine params set to non-trivial values so BN is not identity."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(n, generator=g) * 0.5 + 0.75)
            m.weight.data.copy_(torch.rand(n, generator=g) * 0.5 + 0.75)
            m.bias.data.copy_(torch.randn(n, generator=g) * 0.1)


def export_torch(model, x, path, opset, dynamic_batch=False, input_name="input", output_name="output"):
    model.eval()
    kw = {}
    if dynamic_batch:
        kw["dynamic_axes"] = {input_name: {0: "N"}, output_name: {0: "N"}}
    # PRESERVE (with the model in eval mode) keeps BatchNormalization unfolded: the EVAL path runs
    # the Conv+BN fusion peephole.
    torch.onnx.export(model, (x,), path, opset_version=opset, input_names=[input_name],
                      output_names=[output_name], do_constant_folding=False,
                      training=torch.onnx.TrainingMode.PRESERVE, **kw)
    m = onnx.load(path)
    onnx.checker.check_model(m)
    return m


# ---- generators ----------------------------------------------------------------------------------
def gen_resnet18(out):
    torch.manual_seed(18)
    model = ResNet18(width=16, num_classes=100)
    randomize_bn(model, 1018)
    x = torch.from_numpy(rand_input((1, 3, 64, 64), np.float32, 18))
    res = []
    for opset in (9, 13, 17):
        name = f"resnet18_w16_op{opset}"
        p = os.path.join(out, name + ".onnx")
        export_torch(model, x, p, opset, dynamic_batch=(opset == 13))
        write_inputs(p, {"input": x.numpy()})
        res.append(p)
    return res


def gen_mobilenetv2(out):
    torch.manual_seed(2)
    model = MobileNetV2(width_mult=0.5, num_classes=100)
    randomize_bn(model, 1002)
    x = torch.from_numpy(rand_input((1, 3, 64, 64), np.float32, 2))
    res = []
    for opset in (9, 13, 17):
        name = f"mobilenetv2_x0.5_op{opset}"
        p = os.path.join(out, name + ".onnx")
        export_torch(model, x, p, opset)
        write_inputs(p, {"input": x.numpy()})
        res.append(p)
    return res


def initializers_to_constants(m):
    """Moves every initializer of the main graph into a Constant node at the top of the graph."""
    g = m.graph
    consts = []
    for init in g.initializer:
        t = onnx.TensorProto()
        t.CopyFrom(init)
        consts.append(helper.make_node("Constant", [], [init.name], name="const_" + init.name, value=t))
    init_names = {i.name for i in g.initializer}
    keep_inputs = [i for i in g.input if i.name not in init_names]
    del g.initializer[:]
    del g.input[:]
    g.input.extend(keep_inputs)
    nodes = consts + list(g.node)
    del g.node[:]
    g.node.extend(nodes)
    return m


def gen_const_nodes(out):
    torch.manual_seed(11)
    model = Tiny()
    x = torch.from_numpy(rand_input((1, 3, 8, 8), np.float32, 11))
    p = os.path.join(out, "const_nodes_op11.onnx")
    model.eval()
    torch.onnx.export(model, (x,), p, opset_version=11, input_names=["input"], output_names=["output"],
                      keep_initializers_as_inputs=False, do_constant_folding=False)
    m = initializers_to_constants(onnx.load(p))
    onnx.checker.check_model(m)
    onnx.save(m, p)
    write_inputs(p, {"input": x.numpy()})
    return [p]


def gen_transformer(out):
    torch.manual_seed(17)
    model = EncoderBlock(d_model=32, heads=4, d_ff=64)
    with torch.no_grad():  # non-trivial LayerNorm affine params
        for ln in (model.ln1, model.ln2):
            ln.weight.copy_(torch.rand(32) * 0.5 + 0.75)
            ln.bias.copy_(torch.randn(32) * 0.1)
    x = torch.from_numpy(rand_input((1, 8, 32), np.float32, 32))
    res = []
    for opset in (13, 17):
        p = os.path.join(out, f"transformer_block_op{opset}.onnx")
        export_torch(model, x, p, opset)
        ops = {n.op_type for n in onnx.load(p).graph.node}
        if opset == 17 and "LayerNormalization" not in ops:
            print(f"warning: {p} has no LayerNormalization node", file=sys.stderr)
        write_inputs(p, {"input": x.numpy()})
        res.append(p)
    return res


def gen_extdata(out):
    torch.manual_seed(7)
    model = Tiny()
    x = torch.from_numpy(rand_input((1, 3, 8, 8), np.float32, 7))
    d = os.path.join(out, "extdata")
    if os.path.isdir(d):
        shutil.rmtree(d)
    os.makedirs(d)
    p = os.path.join(d, "model.onnx")
    tmp = os.path.join(d, "tmp_inline.onnx")
    model.eval()
    torch.onnx.export(model, (x,), tmp, opset_version=13, input_names=["input"], output_names=["output"],
                      keep_initializers_as_inputs=False, do_constant_folding=False)
    m = onnx.load(tmp)
    os.remove(tmp)
    onnx.save_model(m, p, save_as_external_data=True, all_tensors_to_one_file=True, location="model.bin",
                    size_threshold=0, convert_attribute=False)
    onnx.checker.check_model(p)
    write_inputs(p, {"input": x.numpy()})
    return [p, os.path.join(d, "model.bin")]


def _f32(name, arr):
    return numpy_helper.from_array(np.asarray(arr, dtype=np.float32), name)


def gen_legacy(out):
    """Old-style ops built with onnx.helper: Clip-6 (min/max attributes), BatchNormalization-7
    (spatial attribute), Upsample-7 (scales attribute) at opset 7; Upsample-9 (scales input) with
    Clip-6 and BatchNormalization-9 at opset 9."""
    rng = np.random.default_rng(6)
    C = 4
    res = []
    for opset in (7, 9):
        w = rng.standard_normal((C, 3, 3, 3)) * 0.3
        b = rng.standard_normal(C) * 0.1
        inits = [_f32("conv_w", w), _f32("conv_b", b),
                 _f32("bn_scale", rng.random(C) * 0.5 + 0.75), _f32("bn_bias", rng.standard_normal(C) * 0.1),
                 _f32("bn_mean", rng.standard_normal(C) * 0.1), _f32("bn_var", rng.random(C) * 0.5 + 0.75)]
        bn_attrs = {"epsilon": 1e-5, "momentum": 0.9}
        if opset == 7:
            bn_attrs["spatial"] = 1
        nodes = [
            helper.make_node("Conv", ["input", "conv_w", "conv_b"], ["conv_out"], name="conv",
                             kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
            helper.make_node("BatchNormalization", ["conv_out", "bn_scale", "bn_bias", "bn_mean", "bn_var"],
                             ["bn_out"], name="bn", **bn_attrs),
            helper.make_node("Clip", ["bn_out"], ["clip_out"], name="clip", min=0.0, max=0.5),
        ]
        if opset == 7:
            nodes.append(helper.make_node("Upsample", ["clip_out"], ["up_out"], name="upsample",
                                          mode="nearest", scales=[1.0, 1.0, 2.0, 2.0]))
        else:
            inits.append(_f32("up_scales", [1.0, 1.0, 2.0, 2.0]))
            nodes.append(helper.make_node("Upsample", ["clip_out", "up_scales"], ["up_out"], name="upsample",
                                          mode="nearest"))
        nodes.append(helper.make_node("Clip", ["up_out"], ["output"], name="clip_default"))  # no min/max
        inputs = [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 8, 8])]
        if opset == 7:  # IR version 3: initializers must also be listed as graph inputs
            inputs += [helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)) for t in inits]
        graph = helper.make_graph(
            nodes, f"legacy_op{opset}", inputs,
            [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, C, 16, 16])], inits)
        m = helper.make_model(graph, producer_name="qopt-gen_models", opset_imports=[helper.make_opsetid("", opset)])
        m.ir_version = 3 if opset == 7 else 4
        onnx.checker.check_model(m)
        p = os.path.join(out, f"legacy_op{opset}.onnx")
        onnx.save(m, p)
        write_inputs(p, {"input": rand_input((1, 3, 8, 8), np.float32, 60 + opset)})
        res.append(p)
    return res


def gen_if(out):
    """If with captures of outer values in both branches; the else branch has a nested If."""
    f = TensorProto.FLOAT
    then_g = helper.make_graph(
        [helper.make_node("Add", ["x", "bias"], ["then_out"], name="then_add")],
        "then_body", [], [helper.make_tensor_value_info("then_out", f, [2, 3])])
    inner_then = helper.make_graph([helper.make_node("Neg", ["x"], ["in_then"], name="inner_neg")],
                                   "inner_then", [], [helper.make_tensor_value_info("in_then", f, [2, 3])])
    inner_else = helper.make_graph([helper.make_node("Abs", ["x"], ["in_else"], name="inner_abs")],
                                   "inner_else", [], [helper.make_tensor_value_info("in_else", f, [2, 3])])
    else_g = helper.make_graph(
        [helper.make_node("ReduceSum", ["x"], ["xsum"], name="else_sum", keepdims=0),
         helper.make_node("Greater", ["xsum", "zero"], ["pos"], name="else_gt"),
         helper.make_node("If", ["pos"], ["inner_out"], name="inner_if", then_branch=inner_then,
                          else_branch=inner_else),
         helper.make_node("Mul", ["inner_out", "scale"], ["else_out"], name="else_mul")],
        "else_body", [], [helper.make_tensor_value_info("else_out", f, [2, 3])])
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x_in"], ["x"], name="pre_relu"),
         helper.make_node("If", ["cond"], ["y"], name="the_if", then_branch=then_g, else_branch=else_g),
         helper.make_node("Sub", ["y", "x_in"], ["output"], name="post_sub")],
        "if_model",
        [helper.make_tensor_value_info("cond", TensorProto.BOOL, []),
         helper.make_tensor_value_info("x_in", f, [2, 3])],
        [helper.make_tensor_value_info("output", f, [2, 3])],
        [_f32("bias", [[0.5, -0.25, 1.0]]), _f32("scale", [2.0, 3.0, -1.0]), _f32("zero", 0.0)])
    m = helper.make_model(graph, producer_name="qopt-gen_models", opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 7
    onnx.checker.check_model(m, full_check=True)
    p = os.path.join(out, "if_op13.onnx")
    onnx.save(m, p)
    write_inputs(p, {"cond": np.array(False), "x_in": rand_input((2, 3), np.float32, 13)})
    return [p]


def gen_loop(out):
    """Loop with a trip count, a loop-carried value, a scan output and an outer-scope capture."""
    f = TensorProto.FLOAT
    body = helper.make_graph(
        [helper.make_node("Cast", ["iter"], ["iter_f"], name="b_cast", to=f),
         helper.make_node("Mul", ["x", "iter_f"], ["xi"], name="b_mul"),          # x: outer capture
         helper.make_node("Add", ["acc_in", "xi"], ["acc_sum"], name="b_add"),
         helper.make_node("Tanh", ["acc_sum"], ["acc_out"], name="b_tanh"),
         helper.make_node("ReduceSum", ["acc_out"], ["scan_out"], name="b_sum", keepdims=0),
         helper.make_node("Identity", ["cond_in"], ["cond_out"], name="b_cond")],
        "loop_body",
        [helper.make_tensor_value_info("iter", TensorProto.INT64, []),
         helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("acc_in", f, [2, 3])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("acc_out", f, [2, 3]),
         helper.make_tensor_value_info("scan_out", f, [])])
    graph = helper.make_graph(
        [helper.make_node("Loop", ["trip_count", "cond", "acc0"], ["acc_final", "sums"], name="the_loop", body=body),
         helper.make_node("Identity", ["sums"], ["per_iter"], name="out_id")],
        "loop_model",
        [helper.make_tensor_value_info("x", f, [2, 3]),
         helper.make_tensor_value_info("acc0", f, [2, 3])],
        [helper.make_tensor_value_info("acc_final", f, [2, 3]),
         helper.make_tensor_value_info("per_iter", f, [None])],
        [numpy_helper.from_array(np.array(5, dtype=np.int64), "trip_count"),
         numpy_helper.from_array(np.array(True), "cond")])
    m = helper.make_model(graph, producer_name="qopt-gen_models", opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 7
    onnx.checker.check_model(m, full_check=True)
    p = os.path.join(out, "loop_op13.onnx")
    onnx.save(m, p)
    write_inputs(p, {"x": rand_input((2, 3), np.float32, 130), "acc0": rand_input((2, 3), np.float32, 131)})
    return [p]


GENERATORS = [
    ("resnet18", gen_resnet18, True),
    ("mobilenetv2", gen_mobilenetv2, True),
    ("const_nodes", gen_const_nodes, True),
    ("transformer", gen_transformer, True),
    ("extdata", gen_extdata, True),
    ("legacy", gen_legacy, False),
    ("if", gen_if, False),
    ("loop", gen_loop, False),
]


def describe(path):
    if not path.endswith(".onnx"):
        return None
    m = onnx.load(path, load_external_data=False)
    g = m.graph
    opset = max((o.version for o in m.opset_import if o.domain in ("", "ai.onnx")), default=0)
    init_names = {i.name for i in g.initializer}
    params = sum(int(np.prod(i.dims)) for i in g.initializer)
    params += sum(int(np.prod(a.t.dims)) for n in g.node if n.op_type == "Constant" for a in n.attribute
                  if a.name == "value")

    def shp(vi):
        dims = vi.type.tensor_type.shape.dim
        return "x".join(d.dim_param if d.dim_param else str(d.dim_value) for d in dims) or "scalar"

    ins = ", ".join(f"{i.name}[{shp(i)}]" for i in g.input if i.name not in init_names)
    ops = sorted({n.op_type for n in g.node})
    return opset, len(g.node), params, ins, ops


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(ROOT, "tests", "models"))
    ap.add_argument("--only", default="", help="comma-separated generator names: " +
                    ",".join(g[0] for g in GENERATORS))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    only = set(filter(None, args.only.split(",")))
    files = []
    for name, fn, needs_torch in GENERATORS:
        if only and name not in only:
            continue
        if needs_torch and torch is None:
            print(f"skipping {name}: torch is not available", file=sys.stderr)
            continue
        files += fn(args.out)

    print(f"{'file':<40} {'opset':>5} {'nodes':>5} {'params':>9} {'bytes':>10}  inputs")
    total = 0
    for p in files:
        size = os.path.getsize(p)
        total += size
        rel = os.path.relpath(p, args.out)
        d = describe(p)
        if d is None:
            print(f"{rel:<40} {'':>5} {'':>5} {'':>9} {size:>10}  (external data)")
            continue
        opset, nn_, params, ins, _ = d
        print(f"{rel:<40} {opset:>5} {nn_:>5} {params:>9} {size:>10}  {ins}")
    tot_all = 0
    for dp, _, fs_ in os.walk(args.out):
        tot_all += sum(os.path.getsize(os.path.join(dp, f)) for f in fs_)
    print(f"generated {len(files)} files, {total / 1e6:.2f} MB; {args.out} now holds {tot_all / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
