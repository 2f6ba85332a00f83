#!/usr/bin/python3
"""Generates single-node cases for the nn and reduce reference families, covering attribute forms the
ONNX backend test data does not: grouped/dilated/asymmetric Conv and ConvTranspose, auto_pad
SAME_LOWER with even kernels, MaxPool Indices (storage_order 0/1, ceil_mode, dilations), AveragePool
ceil_mode + count_include_pad, MatMul 1-D / broadcast / integer, Gemm C forms, Softmax opset < 13,
Reduce* with the axes input (opset 18), noop_with_empty_axes, integer reductions, ArgMax ties,
TopK ties and the opset-1..9 k attribute.

Expected outputs come from torch (convolutions, pools, softmax) or numpy, never from qopt.
Layout: gen/<case>/model.onnx, gen/<case>/test_data_set_0/{input_N.pb,output_N.pb}.
usage: /usr/bin/python3 gen_cases.py [OUTDIR]   (default: gen/ next to this script)"""
import os
import sys

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import TensorProto, helper, numpy_helper

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "gen")
rng = np.random.default_rng(1234)
NAMES = []


def f32(*shape):
    return rng.standard_normal(shape).astype(np.float32)


def case(name, op, inputs, outputs, attrs=None, opset=13, omitted=()):
    """inputs: list of (name, array) ('' name = omitted input); outputs: list of (name, array)."""
    d = os.path.join(OUT, name)
    os.makedirs(os.path.join(d, "test_data_set_0"), exist_ok=True)
    node = helper.make_node(op, [n for n, _ in inputs], [n for n, _ in outputs], **(attrs or {}))
    vi = lambda n, a: helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(a.dtype)
                                                    if hasattr(helper, "np_dtype_to_tensor_dtype")
                                                    else onnx.mapping.NP_TYPE_TO_TENSOR_TYPE[a.dtype], a.shape)
    real = [(n, a) for n, a in inputs if n]
    g = helper.make_graph([node], name, [vi(n, a) for n, a in real], [vi(n, a) for n, a in outputs])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    onnx.save(m, os.path.join(d, "model.onnx"))
    for i, (n, a) in enumerate(real):
        t = numpy_helper.from_array(a, n)
        open(os.path.join(d, "test_data_set_0", f"input_{i}.pb"), "wb").write(t.SerializeToString())
    for i, (n, a) in enumerate(outputs):
        t = numpy_helper.from_array(a, n)
        open(os.path.join(d, "test_data_set_0", f"output_{i}.pb"), "wb").write(t.SerializeToString())
    NAMES.append(name)


T = torch.from_numpy
N = lambda t: t.detach().numpy().astype(np.float32)

# ---- Conv -----------------------------------------------------------------------------------
x, w, b = f32(2, 4, 9, 8), f32(6, 2, 3, 3), f32(6)
y = F.conv2d(F.pad(T(x), (2, 0, 1, 2)), T(w), T(b), stride=2, dilation=2, groups=2)
case("conv2d_group2_dil2_stride2_asym_pads", "Conv", [("x", x), ("w", w), ("b", b)], [("y", N(y))],
     dict(group=2, dilations=[2, 2], strides=[2, 2], pads=[1, 2, 2, 0]))

x, w = f32(1, 3, 7, 6), f32(3, 1, 4, 4)  # depthwise, even kernel, SAME_LOWER stride 2
# out = ceil(7/2)=4, ceil(6/2)=3; need_h = 3*2+4-7 = 3 -> (2, 1); need_w = 2*2+4-6 = 2 -> (1, 1)
y = F.conv2d(F.pad(T(x), (1, 1, 2, 1)), T(w), None, stride=2, groups=3)
case("conv2d_depthwise_same_lower_even_kernel", "Conv", [("x", x), ("w", w)], [("y", N(y))],
     dict(group=3, strides=[2, 2], auto_pad="SAME_LOWER"))
y = F.conv2d(F.pad(T(x), (1, 1, 1, 2)), T(w), None, stride=2, groups=3)
case("conv2d_depthwise_same_upper_even_kernel", "Conv", [("x", x), ("w", w)], [("y", N(y))],
     dict(group=3, strides=[2, 2], auto_pad="SAME_UPPER", kernel_shape=[4, 4]))

x, w, b = f32(2, 3, 11), f32(4, 3, 3), f32(4)
y = F.conv1d(T(x), T(w), T(b), stride=3, dilation=2)
case("conv1d_valid_stride3_dil2", "Conv", [("x", x), ("w", w), ("b", b)], [("y", N(y))],
     dict(strides=[3], dilations=[2], auto_pad="VALID"), opset=11)

x, w, b = f32(1, 4, 5, 6, 4), f32(4, 2, 2, 3, 2), f32(4)
y = F.conv3d(F.pad(T(x), (0, 1, 1, 1, 1, 0)), T(w), T(b), groups=2)
case("conv3d_group2_asym_pads", "Conv", [("x", x), ("w", w), ("b", b)], [("y", N(y))],
     dict(group=2, pads=[1, 1, 0, 0, 1, 1]), opset=7)

# ---- ConvTranspose ------------------------------------------------------------------------
x, w, b = f32(2, 4, 5, 4), f32(4, 3, 3, 2), f32(6)
y = F.conv_transpose2d(T(x), T(w), T(b), stride=2, padding=1, output_padding=1, groups=2, dilation=2)
case("convtranspose2d_group2_dil2_stride2_outpad", "ConvTranspose", [("x", x), ("w", w), ("b", b)],
     [("y", N(y))], dict(group=2, strides=[2, 2], pads=[1, 1, 1, 1], output_padding=[1, 1], dilations=[2, 2]))
x, w = f32(1, 3, 6), f32(3, 2, 4)
y = F.conv_transpose1d(T(x), T(w), None, stride=3, padding=2)
case("convtranspose1d_stride3_pads", "ConvTranspose", [("x", x), ("w", w)], [("y", N(y))],
     dict(strides=[3], pads=[2, 2]), opset=11)

# ---- pools ----------------------------------------------------------------------------------
x = f32(2, 3, 9, 7)
y, idx = F.max_pool2d(T(x), 3, stride=2, padding=1, dilation=2, ceil_mode=True, return_indices=True)
H, W = x.shape[2:]
base = (np.arange(2 * 3).reshape(2, 3, 1, 1) * H * W)
ri = idx.numpy()
case("maxpool2d_ceil_dil2_indices", "MaxPool", [("x", x)], [("y", N(y)), ("i", (ri + base).astype(np.int64))],
     dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], dilations=[2, 2], ceil_mode=1), opset=12)
y, idx = F.max_pool2d(T(x), (2, 3), stride=(2, 2), return_indices=True)
ri = idx.numpy()
ci = (ri % W) * H + ri // W  # column-major spatial index
case("maxpool2d_storage_order1_indices", "MaxPool", [("x", x)], [("y", N(y)), ("i", (ci + base).astype(np.int64))],
     dict(kernel_shape=[2, 3], strides=[2, 2], storage_order=1), opset=12)
x = f32(1, 2, 8, 7)
y = F.avg_pool2d(T(x), 3, stride=2, padding=1, ceil_mode=True, count_include_pad=True)
case("avgpool2d_ceil_count_include_pad", "AveragePool", [("x", x)], [("y", N(y))],
     dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1, count_include_pad=1), opset=11)
y = F.avg_pool2d(T(x), 3, stride=2, padding=1, ceil_mode=True, count_include_pad=False)
case("avgpool2d_ceil_exclude_pad", "AveragePool", [("x", x)], [("y", N(y))],
     dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1), opset=11)
x = f32(2, 3, 5)
case("globalmaxpool_1d", "GlobalMaxPool", [("x", x)], [("y", x.max(axis=2, keepdims=True))])
case("globalaveragepool_1d", "GlobalAveragePool", [("x", x)], [("y", x.mean(axis=2, keepdims=True).astype(np.float32))])

# ---- MatMul / Gemm ---------------------------------------------------------------------------
a, bb = f32(4), f32(3, 4, 5)
case("matmul_1d_3d", "MatMul", [("a", a), ("b", bb)], [("y", np.matmul(a, bb))])
a, bb = f32(2, 3, 4), f32(4)
case("matmul_3d_1d", "MatMul", [("a", a), ("b", bb)], [("y", np.matmul(a, bb))])
a, bb = f32(4), f32(4)
case("matmul_1d_1d", "MatMul", [("a", a), ("b", bb)], [("y", np.array(np.dot(a, bb), dtype=np.float32))])
a, bb = f32(2, 1, 3, 4), f32(5, 4, 2)
case("matmul_broadcast_batch", "MatMul", [("a", a), ("b", bb)], [("y", np.matmul(a, bb))])
a, bb = rng.integers(-50, 50, (2, 3, 4)).astype(np.int32), rng.integers(-50, 50, (4, 5)).astype(np.int32)
case("matmul_int32", "MatMul", [("a", a), ("b", bb)], [("y", np.matmul(a, bb))])
a, bb = rng.integers(-9, 9, (3, 4)).astype(np.int64), rng.integers(-9, 9, (2, 4, 2)).astype(np.int64)
case("matmul_int64", "MatMul", [("a", a), ("b", bb)], [("y", np.matmul(a, bb))])
a, bb, c = f32(5, 3), f32(4, 5), f32(1, 4)
case("gemm_transA_transB_row_bias", "Gemm", [("a", a), ("b", bb), ("c", c)],
     [("y", (0.5 * a.T @ bb.T + 2.0 * c).astype(np.float32))], dict(transA=1, transB=1, alpha=0.5, beta=2.0))
a, bb, c = f32(3, 5), f32(5, 4), f32(3, 1)
case("gemm_column_bias", "Gemm", [("a", a), ("b", bb), ("c", c)], [("y", (a @ bb + c).astype(np.float32))])

# ---- Softmax (opset < 13 coerces to 2-D) ---------------------------------------------------
x = f32(2, 3, 4)
y = F.softmax(T(x).reshape(2, 12), dim=1).reshape(2, 3, 4)
case("softmax_opset11_axis1_coerce", "Softmax", [("x", x)], [("y", N(y))], dict(axis=1), opset=11)
x = f32(2, 3, 4, 2)
y = F.log_softmax(T(x).reshape(6, 8), dim=1).reshape(x.shape)
case("logsoftmax_opset11_axis2_coerce", "LogSoftmax", [("x", x)], [("y", N(y))], dict(axis=2), opset=11)
y = F.softmax(T(x), dim=1)
case("softmax_opset13_axis1", "Softmax", [("x", x)], [("y", N(y))], dict(axis=1), opset=13)

# ---- LayerNormalization with Mean / InvStdDev -------------------------------------------------
x, s, bb = f32(2, 3, 4), f32(3, 4), f32(3, 4)
mu = x.mean(axis=(1, 2), keepdims=True)
var = ((x - mu) ** 2).mean(axis=(1, 2), keepdims=True)
inv = 1.0 / np.sqrt(var + 1e-3)
case("layernorm_axis1_mean_invstd", "LayerNormalization", [("x", x), ("s", s), ("b", bb)],
     [("y", ((x - mu) * inv * s + bb).astype(np.float32)), ("mean", mu.astype(np.float32)),
      ("inv", inv.astype(np.float32))], dict(axis=1, epsilon=1e-3), opset=17)

# ---- InstanceNormalization 3-D ------------------------------------------------------------------
x, s, bb = f32(2, 3, 7), f32(3), f32(3)
y = F.instance_norm(T(x), weight=T(s), bias=T(bb), eps=1e-4)
case("instancenorm_3d", "InstanceNormalization", [("x", x), ("s", s), ("b", bb)], [("y", N(y))], dict(epsilon=1e-4))

# ---- Reduce* ---------------------------------------------------------------------------------
x = f32(3, 4, 5)
ax = lambda *v: np.array(v, dtype=np.int64)
case("reducemean_op18_axes_input", "ReduceMean", [("x", x), ("axes", ax(0, -1))],
     [("y", x.mean(axis=(0, 2), keepdims=True))], opset=18)
case("reducemax_op18_axes_input_nokeep", "ReduceMax", [("x", x), ("axes", ax(-2))],
     [("y", x.max(axis=1))], dict(keepdims=0), opset=18)
case("reducel2_op18_noop_empty_axes", "ReduceL2", [("x", x)], [("y", x)], dict(noop_with_empty_axes=1), opset=18)
case("reducelogsumexp_op18_no_axes", "ReduceLogSumExp", [("x", x)],
     [("y", np.log(np.exp(x.astype(np.float64)).sum(keepdims=True)).astype(np.float32))], opset=18)
case("reducesumsquare_op11_axes_attr", "ReduceSumSquare", [("x", x)], [("y", (x * x).sum(axis=1))],
     dict(axes=[1], keepdims=0), opset=11)
xi = rng.integers(-100, 100, (3, 4, 5)).astype(np.int32)
case("reducemin_int32", "ReduceMin", [("x", xi)], [("y", xi.min(axis=(0, 2), keepdims=True))],
     dict(axes=[0, 2]), opset=13)
xl = rng.integers(-100, 100, (3, 4)).astype(np.int64)
case("reducesum_int64_all", "ReduceSum", [("x", xl)], [("y", xl.sum(keepdims=True))], opset=13)
case("reduceprod_int64_axis0", "ReduceProd", [("x", xl[:, :2] % 7)], [("y", (xl[:, :2] % 7).prod(axis=0))],
     dict(axes=[0], keepdims=0), opset=13)

# ---- ArgMax / ArgMin / TopK ----------------------------------------------------------------------
xt = np.array([[3, 1, 3, 2], [0, 0, -1, -1], [5, 7, 7, 5]], dtype=np.int32)
case("argmax_int32_ties_last", "ArgMax", [("x", xt)], [("y", np.array([[2], [1], [2]], dtype=np.int64))],
     dict(axis=1, select_last_index=1))
case("argmax_int32_ties_first", "ArgMax", [("x", xt)], [("y", np.array([0, 0, 1], dtype=np.int64))],
     dict(axis=-1, keepdims=0))
case("argmin_int32_ties_axis0", "ArgMin", [("x", xt)], [("y", np.array([[1, 1, 1, 1]], dtype=np.int64))])
xf = np.array([[1, 4, 4, 2, 4, 0], [2, 2, 2, 2, 1, 3]], dtype=np.float32)
case("topk_ties_largest", "TopK", [("x", xf), ("k", np.array([3], dtype=np.int64))],
     [("v", np.array([[4, 4, 4], [3, 2, 2]], dtype=np.float32)),
      ("i", np.array([[1, 2, 4], [5, 0, 1]], dtype=np.int64))], dict(axis=1), opset=11)
case("topk_ties_smallest", "TopK", [("x", xf), ("k", np.array([2], dtype=np.int64))],
     [("v", np.array([[0, 1], [1, 2]], dtype=np.float32)), ("i", np.array([[5, 0], [4, 0]], dtype=np.int64))],
     dict(axis=-1, largest=0), opset=11)
case("topk_opset9_k_attribute_axis0", "TopK", [("x", xf)],
     [("v", np.array([[2, 4, 4, 2, 4, 3]], dtype=np.float32)), ("i", np.array([[1, 0, 0, 0, 0, 1]], dtype=np.int64))],
     dict(axis=0, k=1), opset=9)

# ---- LpPool / GlobalLpPool / LpNormalization -------------------------------------------------
x = f32(1, 2, 6, 7)
y = F.lp_pool2d(T(x), 2, (2, 3), stride=2)
case("lppool2d_p2_stride2", "LpPool", [("x", x)], [("y", N(y))], dict(kernel_shape=[2, 3], strides=[2, 2], p=2), opset=11)
y = (np.abs(x.astype(np.float64)) ** 3).sum(axis=(2, 3), keepdims=True) ** (1 / 3)
case("globallppool_p3", "GlobalLpPool", [("x", x)], [("y", y.astype(np.float32))], dict(p=3))
y = x / np.abs(x).sum(axis=1, keepdims=True)
case("lpnormalization_p1_axis1", "LpNormalization", [("x", x)], [("y", y.astype(np.float32))], dict(axis=1, p=1))

print(f"{len(NAMES)} cases in {OUT} (listed in cases.txt):")
print("\n".join(NAMES))
