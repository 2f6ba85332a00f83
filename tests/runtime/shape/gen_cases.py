#!/usr/bin/python3
"""tests/runtime/shape/gen_cases.py — builds the shape-family kernel cases in cases/<name>/.

Each case is a one-node model (model.onnx) with test_data_set_0/{input_N.pb,output_N.pb}, the layout
of ONNX's backend test data, or an expected diagnostic in expect_error.txt instead of outputs.
The cases cover forms ONNX's node tests do not: old-opset attribute forms (Reshape < 5, Squeeze /
Unsqueeze / Split < 13, Slice < 10, Pad < 11, Upsample 7), opset 18/19 features (Split num_outputs,
Pad axes and wrap, Resize axes and keep_aspect_ratio_policy), clamping edge cases and errors.

Oracles (never the code under test):
  numpy          the op's definition written with numpy (np.pad, slicing, np.arange, ...)
  onnx-ref       ONNX's own reference interpolation (onnx.backend.test.case.node.resize)
  onnxruntime    tests/ort/run.js, for the opset-10 Resize / Upsample semantics that ONNX leaves to
                 implementations (run with --ort; the outputs are stored, so regeneration without
                 node keeps them)

Run: /usr/bin/python3 tests/runtime/shape/gen_cases.py [--ort]
"""
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from onnx.backend.test.case.node.resize import (cubic_coeffs, interpolate_nd, linear_coeffs,
                                                 nearest_coeffs)

HERE = os.path.dirname(os.path.abspath(__file__))
CASES = os.path.join(HERE, 'cases')
ORT_RUN = os.path.join(HERE, '..', '..', 'ort', 'run.js')
I64MAX = np.iinfo(np.int64).max
I64MIN = np.iinfo(np.int64).min
USE_ORT = '--ort' in sys.argv
made = []


def model(op, inputs, outputs, opset, attrs=None, nout=1, out_types=None):
    """inputs: list of (name, array or None); None makes an omitted optional input ('')."""
    names = [n if a is not None else '' for n, a in inputs]
    outs = ['y%d' % i for i in range(nout)]
    node = helper.make_node(op, names, outs, **(attrs or {}))
    vi = [helper.make_tensor_value_info(n, onnx.mapping.NP_TYPE_TO_TENSOR_TYPE[a.dtype], a.shape)
          for n, a in inputs if a is not None]
    ovi = []
    for i, o in enumerate(outs):
        t = out_types[i] if out_types else (onnx.mapping.NP_TYPE_TO_TENSOR_TYPE[outputs[i].dtype]
                                            if outputs is not None else TensorProto.FLOAT)
        ovi.append(helper.make_tensor_value_info(o, t, None))
    g = helper.make_graph([node], 'g', vi, ovi)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid('', opset)])
    m.ir_version = 8
    return m


def case(name, op, inputs, outputs, opset, attrs=None, error=None, nout=None, out_types=None):
    d = os.path.join(CASES, name)
    if os.path.isdir(d):
        shutil.rmtree(d)
    os.makedirs(os.path.join(d, 'test_data_set_0'))
    n = nout if nout is not None else (len(outputs) if outputs is not None else 1)
    m = model(op, inputs, outputs, opset, attrs, n, out_types)
    onnx.save(m, os.path.join(d, 'model.onnx'))
    k = 0
    for nm, a in inputs:
        if a is None:
            continue
        t = numpy_helper.from_array(a, nm)
        with open(os.path.join(d, 'test_data_set_0', 'input_%d.pb' % k), 'wb') as f:
            f.write(t.SerializeToString())
        k += 1
    if error is not None:
        with open(os.path.join(d, 'expect_error.txt'), 'w') as f:
            f.write(error + '\n')
    else:
        for i, a in enumerate(outputs):
            t = numpy_helper.from_array(np.asarray(a), 'y%d' % i)
            with open(os.path.join(d, 'test_data_set_0', 'output_%d.pb' % i), 'wb') as f:
                f.write(t.SerializeToString())
    made.append(name)
    return d


def ort_case(name, op, inputs, opset, attrs=None):
    """Outputs from onnxruntime (kept from the previous run when --ort is not given)."""
    d = os.path.join(CASES, name)
    keep = None
    if not USE_ORT:
        p = os.path.join(d, 'test_data_set_0', 'output_0.pb')
        if not os.path.exists(p):
            raise SystemExit('%s needs --ort (node + onnxruntime-node) to be generated' % name)
        keep = open(p, 'rb').read()
    d = case(name, op, inputs, [np.zeros(1, np.float32)], opset, attrs)
    out = os.path.join(d, 'test_data_set_0', 'output_0.pb')
    if keep is not None:
        open(out, 'wb').write(keep)
        return
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(['node', ORT_RUN, os.path.join(d, 'model.onnx'), '--pb-dir',
                        os.path.join(d, 'test_data_set_0'), '--out-dir', tmp, '-q'], check=True)
        y = np.load(os.path.join(tmp, 'y0.npy'))
    open(out, 'wb').write(numpy_helper.from_array(y, 'y0').SerializeToString())


f32 = np.float32
x234 = np.arange(24, dtype=f32).reshape(2, 3, 4)
x34 = (np.arange(12, dtype=np.int32) * 3 - 7).reshape(3, 4)

# ---- Reshape / Squeeze / Unsqueeze ---------------------------------------------------------------
case('reshape_opset4_attr', 'Reshape', [('x', x234)], [x234.reshape(2, 12)], 4, {'shape': [0, -1]})
case('reshape_opset13_zero_copies', 'Reshape', [('x', x234), ('s', np.array([0, 0, -1, 2], np.int64))],
     [x234.reshape(2, 3, 2, 2)], 13)
e03 = np.zeros((0, 3), f32)
case('reshape_allowzero_14', 'Reshape', [('x', e03), ('s', np.array([3, 0], np.int64))],
     [e03.reshape(3, 0)], 14, {'allowzero': 1})
case('reshape_two_inferred_error', 'Reshape', [('x', x234), ('s', np.array([-1, -1], np.int64))], None, 13,
     error='shape has more than one -1')
case('reshape_size_mismatch_error', 'Reshape', [('x', x234), ('s', np.array([5, 5], np.int64))], None, 13,
     error='output shape holds')
x2131 = np.arange(6, dtype=np.int64).reshape(2, 1, 3, 1)
case('squeeze_opset11_attr_neg', 'Squeeze', [('x', x2131)], [x2131.reshape(2, 3)], 11, {'axes': [-1, 1]})
case('squeeze_opset13_all', 'Squeeze', [('x', x2131)], [x2131.reshape(2, 3)], 13)
case('squeeze_opset13_input', 'Squeeze', [('x', x2131), ('a', np.array([3], np.int64))],
     [x2131.reshape(2, 1, 3)], 13)
case('squeeze_not_one_error', 'Squeeze', [('x', x2131), ('a', np.array([0], np.int64))], None, 13,
     error='cannot squeeze axis 0 of extent 2')
case('unsqueeze_opset11_attr', 'Unsqueeze', [('x', x34)], [x34.reshape(1, 3, 4, 1)], 11, {'axes': [0, -1]})
case('unsqueeze_opset13_input_unsorted', 'Unsqueeze', [('x', x34), ('a', np.array([3, 0], np.int64))],
     [x34.reshape(1, 3, 4, 1)], 13)
case('unsqueeze_scalar', 'Unsqueeze', [('x', np.array(5.5, f32)), ('a', np.array([0], np.int64))],
     [np.array([5.5], f32)], 13)
case('flatten_axis0_bool', 'Flatten', [('x', (x234 > 10))], [(x234 > 10).reshape(1, 24)], 13, {'axis': 0})
case('flatten_axis_neg3', 'Flatten', [('x', x234)], [x234.reshape(1, 24)], 13, {'axis': -3})

# ---- Transpose / Concat / Split ------------------------------------------------------------------
case('transpose_default_f16', 'Transpose', [('x', x234.astype(np.float16))],
     [x234.astype(np.float16).transpose()], 13)
case('transpose_perm_u8', 'Transpose', [('x', x234.astype(np.uint8))],
     [x234.astype(np.uint8).transpose(1, 0, 2)], 13, {'perm': [1, 0, 2]})
a = np.arange(6, dtype=np.int32).reshape(2, 3)
e20 = np.zeros((2, 0), np.int32)
case('concat_empty_input', 'Concat', [('a', e20), ('b', a), ('c', e20)], [a], 13, {'axis': -1})
case('concat_axis0_three', 'Concat', [('a', a), ('b', a * 2), ('c', a[:1])],
     [np.concatenate([a, a * 2, a[:1]], 0)], 13, {'axis': 0})
case('concat_mismatch_error', 'Concat', [('a', a), ('b', a[:, :2])], None, 13, {'axis': 0},
     error='input 1 has extent 2 on axis 1')
x24 = np.arange(8, dtype=f32).reshape(2, 4)
case('split_opset11_attr', 'Split', [('x', x24)], [x24[:, :1], x24[:, 1:]], 11, {'axis': 1, 'split': [1, 3]})
case('split_opset11_equal', 'Split', [('x', x24)], [x24[:, :2], x24[:, 2:]], 11, {'axis': -1})
x7 = np.arange(7, dtype=np.int64)
case('split_opset13_input', 'Split', [('x', x7), ('s', np.array([2, 5], np.int64))], [x7[:2], x7[2:]], 13)
case('split_num_outputs_18_uneven', 'Split', [('x', x7)], [x7[:3], x7[3:6], x7[6:]], 18, {'num_outputs': 3})
case('split_uneven_13_error', 'Split', [('x', x7)], None, 13, nout=3, out_types=[TensorProto.INT64] * 3,
     error='does not split into 3 equal parts')
case('split_sum_error', 'Split', [('x', x7), ('s', np.array([2, 2], np.int64))], None, 13, nout=2,
     out_types=[TensorProto.INT64] * 2, error='summing to 4')

# ---- Slice ---------------------------------------------------------------------------------------
x45 = np.arange(20, dtype=f32).reshape(4, 5)
case('slice_opset9_attr', 'Slice', [('x', x45)], [x45[1:, 0:-1]], 9,
     {'starts': [1, 0], 'ends': [I64MAX, -1], 'axes': [0, 1]})
case('slice_opset9_default_axes_clamp', 'Slice', [('x', x45)], [x45[-100:2, 3:100]], 9,
     {'starts': [-100, 3], 'ends': [2, 100]})


def sl(name, x, starts, ends, axes=None, steps=None):
    idx = [slice(None)] * x.ndim
    for i in range(len(starts)):
        ax = axes[i] if axes is not None else i
        st = steps[i] if steps is not None else 1
        e = ends[i]
        s = starts[i]
        # python slicing clamps exactly as ONNX does; INT64 extremes become None / big ints
        idx[ax] = slice(int(s), None if (e == I64MIN and st < 0) else int(e), int(st))
    inputs = [('x', x), ('s', np.array(starts, np.int64)), ('e', np.array(ends, np.int64))]
    inputs.append(('a', np.array(axes, np.int64) if axes is not None else None))
    if steps is not None:
        inputs.append(('p', np.array(steps, np.int64)))
    case(name, 'Slice', inputs, [x[tuple(idx)]], 13)


sl('slice_reverse_int64min', x45, [-1], [I64MIN], [1], [-1])
sl('slice_neg_step2_int64max', x45, [I64MAX, I64MAX], [I64MIN, 0], [0, 1], [-2, -2])
sl('slice_out_of_range_step3', x45, [-100, 1], [100, 1000], [1, 0], [3, 1])
sl('slice_empty_range', x45, [3], [1], [0], [1])
sl('slice_neg_axes_no_steps', x45, [1], [-1], [-1])
sl('slice_int32_inputs_neg_step', x45.astype(np.int8), [3, 4], [0, -6], [0, 1], [-1, -3])
case('slice_int32_index_type', 'Slice', [('x', x45), ('s', np.array([1], np.int32)), ('e', np.array([3], np.int32))],
     [x45[1:3]], 13)
case('slice_zero_step_error', 'Slice', [('x', x45), ('s', np.array([0], np.int64)), ('e', np.array([3], np.int64)),
                                         ('a', np.array([0], np.int64)), ('p', np.array([0], np.int64))],
     None, 13, error='step 0')

# ---- Gather / GatherElements / GatherND ------------------------------------------------------------
xu8 = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
gi = np.array([[-1, 0], [2, -4]], np.int32)
case('gather_axis_neg_int32_idx', 'Gather', [('x', xu8), ('i', gi)], [np.take(xu8, gi, axis=-1)], 13, {'axis': -1})
case('gather_scalar_index', 'Gather', [('x', xu8), ('i', np.array(-2, np.int64))], [np.take(xu8, -2, axis=1)], 13,
     {'axis': 1})
case('gather_out_of_range_error', 'Gather', [('x', xu8), ('i', np.array([3], np.int64))], None, 13, {'axis': 1},
     error='index 3 is out of range for axis extent 3')
ge_i = np.array([[[0, -1, 2, 1]], [[2, 2, -3, 0]]], np.int64)
case('gather_elements_axis1', 'GatherElements', [('x', xu8), ('i', ge_i)],
     [np.take_along_axis(xu8, np.where(ge_i < 0, ge_i + 3, ge_i), axis=1)], 13, {'axis': 1})
gnd_i = np.array([[[1, 2], [0, -1]]], np.int64)
case('gathernd_partial', 'GatherND', [('x', xu8), ('i', gnd_i)],
     [np.stack([xu8[1, 2], xu8[0, -1]])[None]], 13)

# ---- Expand / Tile ---------------------------------------------------------------------------------
xb = np.array([[True], [False], [True]])
case('expand_bidirectional_bool', 'Expand', [('x', xb), ('s', np.array([2, 1, 4], np.int64))],
     [np.broadcast_to(xb, (2, 3, 4)).copy()], 13)
case('expand_shape_smaller_rank', 'Expand', [('x', x234), ('s', np.array([1, 1], np.int64))], [x234], 13)
case('expand_bad_error', 'Expand', [('x', x234), ('s', np.array([2, 4], np.int64))], None, 13,
     error='cannot broadcast')
xi64 = np.arange(6, dtype=np.int64).reshape(2, 3)
case('tile_2x2_int64', 'Tile', [('x', xi64), ('r', np.array([2, 2], np.int64))], [np.tile(xi64, (2, 2))], 13)
case('tile_zero_repeat', 'Tile', [('x', xi64), ('r', np.array([3, 0], np.int64))], [np.tile(xi64, (3, 0))], 13)
case('tile_opset6_3d', 'Tile', [('x', x234), ('r', np.array([1, 2, 3], np.int64))], [np.tile(x234, (1, 2, 3))], 6)

# ---- Pad -------------------------------------------------------------------------------------------
x23 = np.arange(1, 7, dtype=f32).reshape(2, 3)
case('pad_opset7_attr_value', 'Pad', [('x', x23)], [np.pad(x23, ((1, 0), (2, 1)), constant_values=1.5)], 7,
     {'pads': [1, 2, 0, 1], 'value': 1.5})
case('pad_opset7_attr_reflect', 'Pad', [('x', x23)], [np.pad(x23, ((1, 1), (2, 2)), mode='reflect')], 7,
     {'pads': [1, 2, 1, 2], 'mode': 'reflect'})


def pad_np(x, pads, mode, value=0):
    """ONNX Pad with numpy: negative pads crop first, then np.pad pads what remains."""
    r = x.ndim
    sl_ = tuple(slice(max(0, -pads[i]), x.shape[i] - max(0, -pads[r + i])) for i in range(r))
    w = [(max(0, pads[i]), max(0, pads[r + i])) for i in range(r)]
    y = x[sl_]
    if mode == 'constant':
        return np.pad(y, w, mode='constant', constant_values=value)
    if mode == 'wrap':  # modular indexing: numpy's iterative wrap padding is not periodic for pads > extent
        for ax in range(r):
            y = np.take(y, np.arange(-w[ax][0], y.shape[ax] + w[ax][1]), axis=ax, mode='wrap')
        return y
    return np.pad(y, w, mode=mode)


xr = np.arange(1, 13, dtype=np.int32).reshape(3, 4)
for mode in ['reflect', 'edge', 'wrap', 'constant']:
    opset = 19 if mode == 'wrap' else 13
    for tag, pads in [('big', [2, 5, 4, 7]), ('neg', [-1, 2, 1, -2])]:
        ins = [('x', xr), ('p', np.array(pads, np.int64))]
        if mode == 'constant':
            ins.append(('v', np.array(-9, np.int32)))
        case('pad_%s_%s' % (mode, tag), 'Pad', ins, [pad_np(xr, pads, mode, -9)], opset, {'mode': mode})
case('pad_axes_18', 'Pad', [('x', xr), ('p', np.array([1, 2], np.int64)), ('v', np.array(7, np.int32)),
                            ('a', np.array([-1], np.int64))],
     [np.pad(xr, ((0, 0), (1, 2)), constant_values=7)], 18)
case('pad_wrap_before_19_error', 'Pad', [('x', xr), ('p', np.array([0, 1, 0, 1], np.int64))], None, 18,
     {'mode': 'wrap'}, error="pad mode 'wrap' is not supported at opset 18")
case('pad_f64_default_value', 'Pad', [('x', x23.astype(np.float64)), ('p', np.array([0, 1, 1, 0], np.int64))],
     [np.pad(x23.astype(np.float64), ((0, 1), (1, 0)))], 13)

# ---- Shape / Size / ConstantOfShape / Range ----------------------------------------------------------
case('shape_opset13', 'Shape', [('x', x234)], [np.array([2, 3, 4], np.int64)], 13)
case('shape_start_end_15', 'Shape', [('x', x234)], [np.array([3], np.int64)], 15, {'start': -2, 'end': -1})
case('shape_start_after_end_15', 'Shape', [('x', x234)], [np.zeros(0, np.int64)], 15, {'start': 2, 'end': 1})
case('size_empty', 'Size', [('x', e03)], [np.array(0, np.int64)], 13)
case('constantofshape_default', 'ConstantOfShape', [('s', np.array([2, 3], np.int64))], [np.zeros((2, 3), f32)], 13)
case('constantofshape_scalar_int8', 'ConstantOfShape', [('s', np.zeros(0, np.int64))], [np.array(-3, np.int8)], 13,
     {'value': numpy_helper.from_array(np.array([-3], np.int8), 'v')})
case('range_int64_neg_delta', 'Range', [('a', np.array(10, np.int64)), ('b', np.array(-3, np.int64)),
                                        ('c', np.array(-4, np.int64))], [np.arange(10, -3, -4, dtype=np.int64)], 13)
case('range_int16', 'Range', [('a', np.array(-5, np.int16)), ('b', np.array(7, np.int16)),
                              ('c', np.array(5, np.int16))], [np.arange(-5, 7, 5, dtype=np.int16)], 13)
case('range_int32_empty', 'Range', [('a', np.array(5, np.int32)), ('b', np.array(1, np.int32)),
                                    ('c', np.array(1, np.int32))], [np.zeros(0, np.int32)], 13)
case('range_float_fraction', 'Range', [('a', np.array(0, f32)), ('b', np.array(1, f32)),
                                       ('c', np.array(0.1, f32))], [np.arange(0, 1, 0.1, dtype=f32)], 13)
case('range_double_neg', 'Range', [('a', np.array(2.5, np.float64)), ('b', np.array(-1, np.float64)),
                                   ('c', np.array(-0.75, np.float64))], [np.arange(2.5, -1, -0.75)], 13)

# ---- Identity / Dropout ----------------------------------------------------------------------------
case('identity_int8', 'Identity', [('x', x45.astype(np.int8))], [x45.astype(np.int8)], 13)
case('dropout_opset7_mask_is_T', 'Dropout', [('x', x23)], [x23, np.ones_like(x23)], 7)
case('dropout_opset10_mask_bool', 'Dropout', [('x', x23)], [x23, np.ones(x23.shape, bool)], 10, {'ratio': 0.3})
case('dropout_opset13_training_false', 'Dropout',
     [('x', x23), ('r', np.array(0.5, f32)), ('t', np.array(False))], [x23, np.ones(x23.shape, bool)], 13)
case('dropout_training_random_error', 'Dropout', [('x', x23), ('r', np.array(0.5, f32)), ('t', np.array(True))],
     None, 13, error='is random: not supported')

# ---- DepthToSpace / SpaceToDepth -----------------------------------------------------------------------
xd = np.arange(2 * 8 * 2 * 3, dtype=f32).reshape(2, 8, 2, 3)
b = 2
t = xd.reshape(2, b, b, 2, 2, 3).transpose(0, 3, 4, 1, 5, 2).reshape(2, 2, 4, 6)
case('depthtospace_dcr_batch2', 'DepthToSpace', [('x', xd)], [t], 13, {'blocksize': 2})
t = xd.reshape(2, 2, b, b, 2, 3).transpose(0, 1, 4, 2, 5, 3).reshape(2, 2, 4, 6)
case('depthtospace_crd_batch2', 'DepthToSpace', [('x', xd)], [t], 13, {'blocksize': 2, 'mode': 'CRD'})
xs = np.arange(2 * 3 * 4 * 6, dtype=np.int64).reshape(2, 3, 4, 6)
t = xs.reshape(2, 3, 2, 2, 3, 2).transpose(0, 3, 5, 1, 2, 4).reshape(2, 12, 2, 3)
case('spacetodepth_batch2_int64', 'SpaceToDepth', [('x', xs)], [t], 13, {'blocksize': 2})

# ---- Resize / Upsample -----------------------------------------------------------------------------------
xi = np.array([[[[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12], [13, 14, 15, 16]]]], f32)


def rz(name, x, opset, attrs, scales=None, sizes=None, roi=None, ref_scales=None, coeffs=None, **kw):
    ins = [('x', x), ('roi', roi), ('scales', scales), ('sizes', sizes)]
    if opset < 13:  # roi and scales are required inputs at 11-12: pass empty tensors
        ins = [('x', x), ('roi', roi if roi is not None else np.zeros(0, f32)),
               ('scales', scales if scales is not None else np.zeros(0, f32))] + (
            [('sizes', sizes)] if sizes is not None else [])
    if sizes is None and ins[-1][0] == 'sizes':
        ins = ins[:-1]
    y = interpolate_nd(x, coeffs, scale_factors=ref_scales, roi=roi, **kw).astype(x.dtype)
    case(name, 'Resize', ins, [y], opset, attrs)


rz('resize11_sizes_linear_asym', xi, 11, {'mode': 'linear', 'coordinate_transformation_mode': 'asymmetric'},
   sizes=np.array([1, 1, 3, 6], np.int64), ref_scales=np.array([1, 1, 3 / 4, 6 / 4]), coeffs=linear_coeffs,
   coordinate_transformation_mode='asymmetric')
rz('resize13_nearest_floor_half_pixel_down', xi, 13, {'mode': 'nearest', 'nearest_mode': 'floor'},
   scales=np.array([1, 1, 0.5, 0.75], f32), ref_scales=np.array([1, 1, 0.5, 0.75], f32),
   coeffs=lambda r: nearest_coeffs(r, 'floor'))
rz('resize13_nearest_int8', xi.astype(np.int8), 13, {'mode': 'nearest'},
   scales=np.array([1, 1, 1.5, 0.5], f32), ref_scales=np.array([1, 1, 1.5, 0.5], f32), coeffs=nearest_coeffs)
rz('resize13_tf_crop_and_resize_scales', xi, 13,
   {'mode': 'linear', 'coordinate_transformation_mode': 'tf_crop_and_resize', 'extrapolation_value': -1.0},
   scales=np.array([1, 1, 0.75, 1.25], f32), roi=np.array([0, 0, -0.2, 0.3, 1, 1, 0.9, 1.4], f32),
   ref_scales=np.array([1, 1, 0.75, 1.25], f32), coeffs=linear_coeffs,
   coordinate_transformation_mode='tf_crop_and_resize', extrapolation_value=-1.0)
rz('resize13_cubic_pytorch_half_pixel', xi, 13, {'mode': 'cubic', 'coordinate_transformation_mode': 'pytorch_half_pixel'},
   sizes=np.array([1, 1, 2, 7], np.int64), ref_scales=np.array([1, 1, 2 / 4, 7 / 4]), coeffs=cubic_coeffs,
   coordinate_transformation_mode='pytorch_half_pixel')
# opset 18: axes and keep_aspect_ratio_policy (sizes chosen so the policy's rounding is exact)
rz('resize18_axes_scales', xi, 18, {'mode': 'linear', 'axes': [3, 2]}, scales=np.array([2, 0.5], f32),
   ref_scales=np.array([1, 1, 0.5, 2], f32), coeffs=linear_coeffs)
rz('resize18_not_larger', xi, 18, {'mode': 'linear', 'axes': [2, 3], 'keep_aspect_ratio_policy': 'not_larger'},
   sizes=np.array([3, 8], np.int64), ref_scales=np.array([1, 1, 0.75, 0.75]), coeffs=linear_coeffs)
rz('resize18_not_smaller', xi, 18, {'mode': 'nearest', 'axes': [2, 3], 'keep_aspect_ratio_policy': 'not_smaller'},
   sizes=np.array([3, 8], np.int64), ref_scales=np.array([1, 1, 2, 2]), coeffs=nearest_coeffs)
case('resize18_antialias_error', 'Resize', [('x', xi), ('roi', None), ('scales', np.array([1, 1, 0.5, 0.5], f32))],
     None, 18, {'mode': 'linear', 'antialias': 1}, error='antialias with downscaling is not supported')
case('resize13_scales_and_sizes_error', 'Resize', [('x', xi), ('roi', None), ('scales', np.array([1, 1, 2, 2], f32)),
                                                   ('sizes', np.array([1, 1, 8, 8], np.int64))],
     None, 13, {'mode': 'nearest'}, error='exactly one of scales and sizes')
# opset 7/9 Upsample nearest: out[i] = in[floor(i / scale)]
up = xi.repeat(2, axis=2).repeat(3, axis=3)
case('upsample7_attr_nearest', 'Upsample', [('x', xi)], [up], 7, {'scales': [1.0, 1.0, 2.0, 3.0]})
case('upsample9_input_nearest', 'Upsample', [('x', xi), ('s', np.array([1, 1, 2, 3], f32))], [up], 9)
x12 = np.array([[[[1, 2], [3, 4]]]], f32)
ort_case('upsample9_linear_ort', 'Upsample', [('x', x12), ('s', np.array([1, 1, 2, 2.5], f32))], 9, {'mode': 'linear'})
ort_case('resize10_nearest_down_ort', 'Resize', [('x', xi), ('s', np.array([1, 1, 0.6, 0.6], f32))], 10,
         {'mode': 'nearest'})
ort_case('resize10_nearest_up_ort', 'Resize', [('x', x12), ('s', np.array([1, 1, 1.5, 3], f32))], 10,
         {'mode': 'nearest'})
ort_case('resize10_linear_ort', 'Resize', [('x', xi), ('s', np.array([1, 1, 0.5, 1.5], f32))], 10, {'mode': 'linear'})
# opset 19 modes: onnxruntime's float32 coordinates (the rounding of nearest modes depends on them)
xr4 = np.random.default_rng(7).standard_normal((1, 2, 5, 7)).astype(f32)
s19 = np.array([1, 1, 0.6, 1.7], f32)
ort_case('resize19_half_pixel_symmetric_nearest_floor_ort', 'Resize', [('x', xr4), ('roi', None), ('s', s19)], 19,
         {'mode': 'nearest', 'coordinate_transformation_mode': 'half_pixel_symmetric', 'nearest_mode': 'floor'})
ort_case('resize19_half_pixel_symmetric_linear_ort', 'Resize', [('x', xr4), ('roi', None), ('s', s19)], 19,
         {'mode': 'linear', 'coordinate_transformation_mode': 'half_pixel_symmetric'})
ort_case('resize19_tf_half_pixel_for_nn_ceil_ort', 'Resize', [('x', xr4), ('roi', None), ('s', s19)], 19,
         {'mode': 'nearest', 'coordinate_transformation_mode': 'tf_half_pixel_for_nn', 'nearest_mode': 'ceil'})
ort_case('resize19_half_pixel_round_prefer_ceil_ort', 'Resize', [('x', xr4), ('roi', None), ('s', s19)], 19,
         {'mode': 'nearest', 'nearest_mode': 'round_prefer_ceil'})
ort_case('resize19_cubic_exclude_outside_ort', 'Resize', [('x', xr4), ('roi', None), ('s', np.array([1, 1, 2, 0.5], f32))],
         19, {'mode': 'cubic', 'exclude_outside': 1, 'cubic_coeff_a': -0.5})

# ---- CumSum / Trilu / OneHot / Compress / Scatter ------------------------------------------------------
case('cumsum_int64_exclusive_reverse', 'CumSum', [('x', xi64), ('a', np.array(1, np.int32))],
     [np.flip(np.cumsum(np.flip(xi64, 1), 1) - np.flip(xi64, 1), 1)], 14, {'exclusive': 1, 'reverse': 1})
case('trilu_lower_k_neg_batch', 'Trilu', [('x', x234), ('k', np.array(-1, np.int64))],
     [np.tril(x234, -1)], 14, {'upper': 0})
case('onehot_axis0_float_idx', 'OneHot', [('i', np.array([1.0, -1.0, 5.0], f32)), ('d', np.array(3, np.int64)),
                                          ('v', np.array([0, 7], np.int32))],
     [np.array([[0, 0, 0], [7, 0, 0], [0, 7, 0]], np.int32)], 11, {'axis': 0})
case('compress_flat_short_cond', 'Compress', [('x', x23), ('c', np.array([True, False, True]))],
     [np.array([1, 3], f32)], 11)
sd = np.full((2, 3), 5, np.int64)
si = np.array([[0, 0], [1, -2]], np.int64)
su = np.array([[3, 9], [8, 1]], np.int64)
sy = sd.copy()
for i in range(2):
    for j in range(2):
        sy[i, si[i, j]] = max(sy[i, si[i, j]], su[i, j])
case('scatter_elements_max_18', 'ScatterElements', [('x', sd), ('i', si), ('u', su)], [sy], 18,
     {'axis': 1, 'reduction': 'max'})

with open(os.path.join(HERE, 'cases.txt'), 'w') as f:
    f.write('\n'.join(sorted(made)) + '\n')
print('%d cases' % len(made))
