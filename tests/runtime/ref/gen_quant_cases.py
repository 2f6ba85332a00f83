#!/usr/bin/python3
"""Generates tests/runtime/ref/quant_cases.txt: test cases for the quantization reference kernels.

Oracles (never qopt itself):
  * QONNX Quant / BipolarQuant / Trunc: the numpy re-implementation below, written from
    shared/REFERENCE.md §3.1 literally (float32 arithmetic, clamp then round). Rounding formulas are
    evaluated on float64 copies of the float32 values, so |x| + 0.5 is exact and the tie rule is
    decided on the exact value (qonnx's float32 evaluation of sign(x)*floor(|x|+0.5) would round
    0.49999997 up to 1: qopt follows the documented tie semantics instead).
  * QuantizeLinear / DequantizeLinear: onnxruntime (tests/ort/run.js, CPU, optimizations off) on
    small generated models, opsets 10, 13, 19 and 21.

Usage: /usr/bin/python3 tests/runtime/ref/gen_quant_cases.py [OUT]   (run from the repository root;
needs `cd tests/ort && npm install --ignore-scripts` for the onnxruntime part)

File format (whitespace separated, one record per line):
  case NAME
  op DOMAIN OPTYPE OPSET          (DOMAIN "-" = default domain)
  attr i|f|s NAME VALUE
  in ELEM RANK DIMS... VALUES...   or  in none
  out ELEM RANK DIMS... VALUES...
  end
ELEM is the ONNX TensorProto data type number; float values are C99 hex literals (nan, inf, -inf
allowed); integer values decimal."""
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

rng = np.random.default_rng(20261122)
F32 = np.float32

ELEM = {np.dtype('float32'): 1, np.dtype('uint8'): 2, np.dtype('int8'): 3, np.dtype('uint16'): 4,
        np.dtype('int16'): 5, np.dtype('int32'): 6, np.dtype('int64'): 7, np.dtype('float16'): 10, np.dtype('float64'): 11, np.dtype('uint32'): 12,
        np.dtype('uint64'): 13, np.dtype('bool'): 9}


def fmt_val(v, is_float):
    if not is_float:
        return str(int(v))
    v = float(v)
    if np.isnan(v):
        return 'nan'
    if np.isinf(v):
        return 'inf' if v > 0 else '-inf'
    return v.hex()


def tensor_line(tag, a, elem=None):
    a = np.asarray(a)
    e = elem if elem is not None else ELEM[a.dtype]
    isf = a.dtype.kind == 'f'
    vals = ' '.join(fmt_val(v, isf) for v in a.ravel())
    return f"{tag} {e} {a.ndim} {' '.join(str(d) for d in a.shape)} {vals}".replace('  ', ' ')


class Out:
    def __init__(self):
        self.lines = []
        self.n = 0

    def case(self, name, domain, op, opset, attrs, inputs, outputs):
        self.n += 1
        L = self.lines
        L.append(f'case {name}')
        L.append(f'op {domain} {op} {opset}')
        for k, v in attrs.items():
            if isinstance(v, str):
                L.append(f'attr s {k} {v}')
            elif isinstance(v, float):
                L.append(f'attr f {k} {v.hex()}')
            else:
                L.append(f'attr i {k} {int(v)}')
        for a in inputs:
            L.append('in none' if a is None else tensor_line('in', a))
        for a in outputs:
            L.append(tensor_line('out', a))
        L.append('end')


# ---- rounding (REFERENCE.md §3.1 table, plus qopt's HALF_POS_INF and DPU of §4.1) -------------
def rounding(y, mode):
    x = y.astype(np.float64)
    m = mode.upper()
    if m in ('ROUND', 'HALF_EVEN'):
        r = np.round(x)
    elif m == 'CEIL':
        r = np.ceil(x)
    elif m == 'FLOOR':
        r = np.floor(x)
    elif m == 'UP':
        r = np.sign(x) * np.ceil(np.abs(x))
    elif m == 'DOWN':
        r = np.fix(x)
    elif m == 'HALF_UP':
        r = np.sign(x) * np.floor(np.abs(x) + 0.5)
    elif m == 'HALF_DOWN':
        r = np.sign(x) * np.ceil(np.abs(x) - 0.5)
    elif m == 'HALF_POS_INF':
        r = np.floor(x + 0.5)
    elif m == 'DPU':
        r = np.where((x < 0) & (x - np.floor(x) == 0.5), np.ceil(x), np.round(x))
    else:
        raise ValueError(mode)
    return r.astype(F32)


def min_int(signed, narrow, bw):
    if signed:
        return F32(-(2.0 ** (bw - 1)) + (1 if narrow else 0))
    return F32(0)


def max_int(signed, narrow, bw):
    if signed:
        return F32(2.0 ** (bw - 1) - 1)
    return F32(2.0 ** bw - (2 if narrow else 1))


def np_quant(x, s, z, bw, signed, narrow, mode):
    with np.errstate(all='ignore'):
        y = x / s
        y = y + z
        if bw == 1 and signed:
            y = np.where(y >= 0, F32(1), F32(-1)).astype(F32)
        else:
            hi, lo = max_int(signed, narrow, bw), min_int(signed, narrow, bw)
            y = np.where(y > hi, hi, y)
            y = np.where(y < lo, lo, y)
            y = rounding(y, mode)
        return ((y - z) * s).astype(F32)


def np_bipolar(x, s):
    return (np.where(x >= 0, F32(1), F32(-1)) * s).astype(F32)


def np_trunc_v1(x, s, z, ibw, obw, mode):
    y = np.round(x / s + z).astype(F32)
    t = F32(2.0 ** (ibw - obw))
    y = rounding((y / t).astype(F32), mode)
    return ((y - z) * s).astype(F32)


def np_trunc_v2(x, s, z, ibw, os_, obw, signed, narrow, mode):
    y = np.round(x / s + z).astype(F32)
    t = (F32(2) ** np.round(np.log2((os_ / s).astype(F32)))).astype(F32)
    y = (y / t).astype(F32)
    hi, lo = max_int(signed, narrow, obw), min_int(signed, narrow, obw)
    y = np.where(y > hi, hi, y)
    y = np.where(y < lo, lo, y)
    y = rounding(y, mode)
    return ((y - (z / t).astype(F32)) * os_).astype(F32)


QD = 'qonnx.custom_op.general'
MODES = ['ROUND', 'HALF_EVEN', 'CEIL', 'FLOOR', 'UP', 'DOWN', 'HALF_UP', 'HALF_DOWN', 'HALF_POS_INF', 'DPU']


def qonnx_cases(o):
    shape = (2, 3, 2)
    for mode in MODES:
        for bw in (1, 2, 4, 8):
            for signed in (0, 1):
                for narrow in (0, 1):
                    for sv in ('tensor', 'channel'):
                        x = (rng.standard_normal(shape) * 2).astype(F32)
                        if sv == 'tensor':
                            s = np.array(rng.uniform(0.05, 0.6), dtype=F32)
                            z = np.array(0 if signed else rng.integers(0, 3), dtype=F32)
                        else:
                            s = rng.uniform(0.05, 0.6, (1, 3, 1)).astype(F32)
                            z = (np.zeros((1, 3, 1)) if signed else rng.integers(0, 3, (1, 3, 1))).astype(F32)
                        b = np.array(bw, dtype=F32)
                        y = np_quant(x, s, z, bw, signed, narrow, mode)
                        o.case(f'quant_{mode}_b{bw}_s{signed}_n{narrow}_{sv}', QD, 'Quant', 1,
                               {'signed': signed, 'narrow': narrow, 'rounding_mode': mode}, [x, s, z, b], [y])
    # exact ties: power-of-two scale, x/s = k + 0.5 exactly; zero points keep the tie
    ks = np.arange(-12, 12, dtype=F32) + F32(0.5)
    for mode in MODES:
        for z0 in (0.0, 2.0):
            s = np.array(0.25, dtype=F32)
            x = (ks * s).astype(F32)
            z = np.array(z0, dtype=F32)
            b = np.array(8, dtype=F32)
            y = np_quant(x, s, z, 8, 1, 0, mode)
            o.case(f'quant_ties_{mode}_z{int(z0)}', QD, 'Quant', 1,
                   {'signed': 1, 'narrow': 0, 'rounding_mode': mode.lower()}, [x, s, z, b], [y])
    # NaN/inf, zero, 16-bit
    x = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e30, -1e30, 3.3], dtype=F32)
    for bw in (3, 16):
        y = np_quant(x, np.array(0.5, F32), np.array(0, F32), bw, 1, 1, 'ROUND')
        o.case(f'quant_special_b{bw}', QD, 'Quant', 1, {'signed': 1, 'narrow': 1, 'rounding_mode': 'ROUND'},
               [x, np.array(0.5, F32), np.array(0, F32), np.array(bw, F32)], [y])
    # integer bit width input
    x = (rng.standard_normal((5,)) * 4).astype(F32)
    y = np_quant(x, np.array(0.3, F32), np.array(0, F32), 3, 1, 0, 'ROUND')
    o.case('quant_int_bitwidth', 'onnx.brevitas', 'Quant', 1, {'signed': 1, 'narrow': 0, 'rounding_mode': 'ROUND'},
           [x, np.array(0.3, F32), np.array(0, F32), np.array(3, np.int32)], [y])

    for sv in ('tensor', 'channel'):
        x = rng.standard_normal((2, 3, 2)).astype(F32)
        x[0, 0, 0] = 0
        x[1, 1, 1] = -0.0
        s = np.array(0.7, F32) if sv == 'tensor' else rng.uniform(0.1, 1, (3, 1)).astype(F32)
        o.case(f'bipolar_{sv}', QD, 'BipolarQuant', 1, {}, [x, s], [np_bipolar(x, s)])

    for mode in ('FLOOR', 'ROUND', 'CEIL', 'HALF_UP', 'DOWN'):
        for sv in ('tensor', 'channel'):
            shp = (1, 3, 2, 2)
            if sv == 'tensor':
                s = np.array(2.0 ** -5, F32)
            else:
                s = (2.0 ** -rng.integers(3, 7, (1, 3, 1, 1))).astype(F32)
            q = rng.integers(-128, 128, shp).astype(F32)
            x = (q * s).astype(F32)
            x.ravel()[0] += F32(0.5) * (s.ravel()[0])  # not on the grid: exercises the input RNE
            z = np.array(0, F32)
            ibw, obw = 8, 4
            y1 = np_trunc_v1(x, s, z, ibw, obw, mode)
            o.case(f'trunc_v1_{mode}_{sv}', QD, 'Trunc', 1, {'rounding_mode': mode},
                   [x, s, z, np.array(ibw, F32), np.array(obw, F32)], [y1])
            for signed, narrow in ((1, 0), (0, 0), (1, 1)):
                os_ = (s * F32(16)).astype(F32)
                y2 = np_trunc_v2(x, s, z, ibw, os_, obw, signed, narrow, mode)
                o.case(f'trunc_v2_{mode}_{sv}_s{signed}_n{narrow}', QD, 'Trunc', 2,
                       {'rounding_mode': mode, 'signed': signed, 'narrow': narrow},
                       [x, s, z, np.array(ibw, F32), os_, np.array(obw, F32)], [y2])


# ---- onnxruntime oracle for QuantizeLinear / DequantizeLinear ---------------------------------
def run_ort(model, feeds):
    root = os.path.dirname(os.path.abspath(__file__))
    runjs = os.path.join(root, '..', '..', 'ort', 'run.js')
    with tempfile.TemporaryDirectory() as d:
        mp = os.path.join(d, 'm.onnx')
        onnx.save(model, mp)
        args = ['node', runjs, mp, '--out-dir', os.path.join(d, 'out'), '-q']
        for name, a in feeds.items():
            p = os.path.join(d, name + '.npy')
            np.save(p, a)
            args += ['--input', f'{name}={p}']
        subprocess.run(args, check=True)
        return np.load(os.path.join(d, 'out', 'y.npy'))


def tp(a):
    return ELEM[np.asarray(a).dtype]


def qdq_model(op, opset, x, scale, zp, attrs):
    inputs = [helper.make_tensor_value_info('x', tp(x), list(x.shape))]
    inits = [numpy_helper.from_array(scale, 'scale')]
    names = ['x', 'scale']
    if zp is not None:
        inits.append(numpy_helper.from_array(zp, 'zp'))
        names.append('zp')
    node = helper.make_node(op, names, ['y'], **attrs)
    if op == 'DequantizeLinear':
        ye = tp(scale)
    else:
        ye = tp(zp) if zp is not None else attrs.get('output_dtype', TensorProto.UINT8)
    g = helper.make_graph([node], 'g', inputs, [helper.make_tensor_value_info('y', ye, None)], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid('', opset)])
    m.ir_version = 10 if opset >= 21 else 8
    return m


def qdq_cases(o):
    qtypes = {10: [np.uint8, np.int8], 13: [np.uint8, np.int8], 19: [np.uint8, np.int8],
              21: [np.uint8, np.int8, np.uint16, np.int16]}
    for opset, types in qtypes.items():
        for qt in types:
            info = np.iinfo(qt)
            for layout in ('tensor', 'axis', 'block') if opset >= 21 else ('tensor', 'axis') if opset >= 13 else ('tensor',):
                shape = (2, 4, 3)
                x = (rng.standard_normal(shape) * 40).astype(F32)
                # NaN/inf only per-tensor/per-axis: onnxruntime's blocked path converts them with
                # cvttss2si (NaN, inf -> INT_MIN, then + zp wraps), an artifact qopt does not copy
                x.ravel()[:6] = [np.nan, np.inf, -np.inf, 1e9, -1e9, -0.0] if layout != 'block' else [3e4, -3e4, 1e9, -1e9, 0.0, -0.0]
                attrs = {}
                if layout == 'tensor':
                    scale = np.array(0.5, F32)  # power of two: many exact ties
                    zp = np.array(rng.integers(info.min // 4, info.max // 4 + 1), qt)
                    x.ravel()[6:18] = (np.arange(-6, 6) + 0.5) * 0.5
                elif layout == 'axis':
                    attrs['axis'] = 1
                    scale = rng.uniform(0.05, 0.9, (4,)).astype(F32)
                    zp = rng.integers(info.min // 4, info.max // 4 + 1, (4,)).astype(qt)
                else:
                    attrs['axis'] = 1
                    attrs['block_size'] = 3
                    scale = rng.uniform(0.05, 0.9, (2, 2, 3)).astype(F32)
                    zp = rng.integers(info.min // 4, info.max // 4 + 1, (2, 2, 3)).astype(qt)
                for with_zp in (True, False):
                    if not with_zp and qt not in (np.uint8,):
                        continue
                    m = qdq_model('QuantizeLinear', opset, x, scale, zp if with_zp else None, attrs)
                    y = run_ort(m, {'x': x})
                    o.case(f'q_op{opset}_{np.dtype(qt).name}_{layout}_zp{int(with_zp)}', '-', 'QuantizeLinear',
                           opset, attrs, [x, scale, zp if with_zp else None], [y])
                    q = rng.integers(info.min, int(info.max) + 1, shape).astype(qt)
                    m = qdq_model('DequantizeLinear', opset, q, scale, zp if with_zp else None, attrs)
                    y = run_ort(m, {'x': q})
                    o.case(f'dq_op{opset}_{np.dtype(qt).name}_{layout}_zp{int(with_zp)}', '-', 'DequantizeLinear',
                           opset, attrs, [q, scale, zp if with_zp else None], [y])
    # int32 DequantizeLinear (bias): large magnitudes, zero point 0
    q = np.array([2**31 - 1, -2**31, 16777217, -16777217, 123456789, 0, 1, -1], np.int32)
    for opset in (10, 13):
        scale = np.array(0.0078125 * 1.1, F32)
        m = qdq_model('DequantizeLinear', opset, q, scale, np.array(0, np.int32), {})
        y = run_ort(m, {'x': q})
        o.case(f'dq_op{opset}_int32', '-', 'DequantizeLinear', opset, {}, [q, scale, np.array(0, np.int32)], [y])
    # output_dtype without a zero point (opset 21)
    x = (rng.standard_normal((6,)) * 100).astype(F32)
    attrs = {'output_dtype': TensorProto.INT16}
    m = qdq_model('QuantizeLinear', 21, x, np.array(0.25, F32), None, attrs)
    y = run_ort(m, {'x': x})
    o.case('q_op21_output_dtype_int16', '-', 'QuantizeLinear', 21, attrs, [x, np.array(0.25, F32), None], [y])
    # float16 scale and input (opset 19): output follows the scale type for DequantizeLinear
    x16 = (rng.standard_normal((5,)) * 10).astype(np.float16)
    s16 = np.array(0.1, np.float16)
    # onnxruntime 1.23 truncates x/scale toward zero for float16 input (6.92 -> 6), against the spec's
    # round-half-even: the oracle here is the spec formula with the division in float32
    y = np.clip(np.round(x16.astype(F32) / s16.astype(F32)) + 3, -128, 127).astype(np.int8)
    o.case('q_op19_f16', '-', 'QuantizeLinear', 19, {}, [x16, s16, np.array(3, np.int8)], [y])
    q = np.array([-128, -5, 0, 7, 127], np.int8)
    m = qdq_model('DequantizeLinear', 19, q, s16, np.array(3, np.int8), {})
    y = run_ort(m, {'x': q})
    o.case('dq_op19_f16', '-', 'DequantizeLinear', 19, {}, [q, s16, np.array(3, np.int8)], [y])


def ort_single(op, opset, ins, out_elem, attrs):
    """Runs one node on onnxruntime; ins: list of (name, array); returns output 'y'."""
    node = helper.make_node(op, [n for n, _ in ins], ['y'], **attrs)
    g = helper.make_graph([node], 'g', [helper.make_tensor_value_info(n, tp(a), list(a.shape)) for n, a in ins],
                          [helper.make_tensor_value_info('y', out_elem, None)])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid('', opset)])
    m.ir_version = 8
    return run_ort(m, dict(ins))


def cast_cases(o):
    """Cast through onnxruntime: float -> integers truncate toward zero, float -> float16 rounds to
    nearest even (float64 -> float16 rounds through float32, as onnxruntime does), integers -> float."""
    x = np.concatenate([np.array([-0.0, 0.5, -0.5, 1.5, -1.5, 2.5, -2.5, 0.99999994, -0.99999994, 100.7, -100.7,
                                  127.9, -128.9, 65504.0, 65519.0, 65520.0, 1e-8, 6e-8, 3e-8, np.nan], F32),
                        (rng.standard_normal(20) * 50).astype(F32)])
    ints = {2: (np.uint8, 0, 255), 3: (np.int8, -128, 127), 4: (np.uint16, 0, 65535), 5: (np.int16, -32768, 32767),
            6: (np.int32, -2**31, 2**31 - 1), 7: (np.int64, -2**63, 2**63 - 1), 12: (np.uint32, 0, 2**32 - 1)}
    for to, (dt, lo, hi) in ints.items():
        xi = x[np.isfinite(x) & (np.trunc(x) >= lo) & (np.trunc(x) <= hi)]  # in range: no conversion UB
        y = ort_single('Cast', 13, [('x', xi)], to, {'to': to})
        o.case(f'cast_f32_to_{np.dtype(dt).name}', '-', 'Cast', 13, {'to': to}, [xi], [y])
    # out of range and non-finite: what onnxruntime 1.23 on x86-64 produces (cvttss2si semantics,
    # the integer indefinite value wrapped to the target width; uint32 through the unsigned split)
    oor = np.array([300.5, -300.5, 1e10, -1e10, np.nan, np.inf, -np.inf, 3e9, 70000.2], F32)
    for to in (2, 3, 5, 6, 7, 12):
        y = ort_single('Cast', 13, [('x', oor)], to, {'to': to})
        o.case(f'cast_f32_out_of_range_to_{to}', '-', 'Cast', 13, {'to': to}, [oor], [y])
    for src in (F32, np.float64):
        xs = x.astype(src)
        y = ort_single('Cast', 13, [('x', xs)], TensorProto.FLOAT16, {'to': TensorProto.FLOAT16})
        o.case(f'cast_{np.dtype(src).name}_to_f16', '-', 'Cast', 13, {'to': 10}, [xs], [y])
    y = ort_single('Cast', 13, [('x', x)], TensorProto.BOOL, {'to': TensorProto.BOOL})
    o.case('cast_f32_to_bool', '-', 'Cast', 13, {'to': 9}, [x], [y])
    big = np.array([0, 1, -1, 16777217, -16777217, 2**53 + 1, -(2**62) - 3, 2**63 - 1, 123456789123], np.int64)
    for to in (1, 10, 11):
        y = ort_single('Cast', 13, [('x', big)], to, {'to': to})
        o.case(f'cast_i64_to_{to}', '-', 'Cast', 13, {'to': to}, [big], [y])
    small = np.array([-128, -1, 0, 1, 127], np.int8)
    for to in (2, 4, 6, 7, 13):
        y = ort_single('Cast', 13, [('x', small)], to, {'to': to})
        o.case(f'cast_i8_to_{to}', '-', 'Cast', 13, {'to': to}, [small], [y])


def int4_tensor(name, vals, signed):
    """A packed int4/uint4 initializer (onnx 1.12's helpers predate the 4-bit types)."""
    t = onnx.TensorProto()
    t.name = name
    t.data_type = 22 if signed else 21
    v = np.asarray(vals).astype(np.int64)
    t.dims.extend(v.shape)
    flat = [int(e) & 0xF for e in v.ravel()]
    if len(flat) % 2:
        flat.append(0)
    t.raw_data = bytes(flat[i] | (flat[i + 1] << 4) for i in range(0, len(flat), 2))
    return t


def int4_cases(o):
    """QuantizeLinear/DequantizeLinear-21 with int4/uint4, through onnxruntime. Q's 4-bit output is
    observed through DequantizeLinear(scale 1, zp 0), exact for 4-bit values."""
    for signed in (True, False):
        e = 22 if signed else 21
        lo, hi = (-8, 7) if signed else (0, 15)
        for layout in ('tensor', 'axis'):
            x = (rng.standard_normal((2, 4)) * 6).astype(F32)
            x.ravel()[:4] = [0.75, -0.25, 2.25, -1.75]  # ties at scale 0.5
            if layout == 'tensor':
                scale, zp, attrs = np.array(0.5, F32), np.array(1 if signed else 3), {}
            else:
                scale, zp, attrs = np.array([0.5, 0.7, 0.9, 1.3], F32), np.array([0, -2, 1, 3] if signed else [0, 2, 5, 9]), {'axis': 1}
            inits = [numpy_helper.from_array(scale, 'scale'), int4_tensor('zp', zp, signed),
                     numpy_helper.from_array(np.array(1, F32), 'one'), int4_tensor('zero', np.array(0), signed)]
            nodes = [helper.make_node('QuantizeLinear', ['x', 'scale', 'zp'], ['q'], **attrs),
                     helper.make_node('DequantizeLinear', ['q', 'one', 'zero'], ['y'])]
            g = helper.make_graph(nodes, 'g', [helper.make_tensor_value_info('x', 1, [2, 4])],
                                  [helper.make_tensor_value_info('y', 1, None)], inits)
            m = helper.make_model(g, opset_imports=[helper.make_opsetid('', 21)])
            m.ir_version = 10
            q = run_ort(m, {'x': x})
            tag = 'int4' if signed else 'uint4'
            o.lines.append(f'case q_op21_{tag}_{layout}')
            o.lines.append('op - QuantizeLinear 21')
            for k, v in attrs.items():
                o.lines.append(f'attr i {k} {v}')
            o.lines.append(tensor_line('in', x))
            o.lines.append(tensor_line('in', scale))
            o.lines.append(tensor_line('in', zp.astype(np.int64), elem=e))
            o.lines.append(tensor_line('out', q.astype(np.int64), elem=e))
            o.lines.append('end')
            o.n += 1
            # DequantizeLinear on a 4-bit constant
            qv = rng.integers(lo, hi + 1, (2, 4))
            inits = [int4_tensor('qc', qv, signed), numpy_helper.from_array(scale, 'scale'), int4_tensor('zp', zp, signed)]
            nodes = [helper.make_node('DequantizeLinear', ['qc', 'scale', 'zp'], ['y'], **attrs)]
            g = helper.make_graph(nodes, 'g', [], [helper.make_tensor_value_info('y', 1, None)], inits)
            m = helper.make_model(g, opset_imports=[helper.make_opsetid('', 21)])
            m.ir_version = 10
            y = run_ort(m, {})
            o.lines.append(f'case dq_op21_{tag}_{layout}')
            o.lines.append('op - DequantizeLinear 21')
            for k, v in attrs.items():
                o.lines.append(f'attr i {k} {v}')
            o.lines.append(tensor_line('in', qv.astype(np.int64), elem=e))
            o.lines.append(tensor_line('in', scale))
            o.lines.append(tensor_line('in', zp.astype(np.int64), elem=e))
            o.lines.append(tensor_line('out', y))
            o.lines.append('end')
            o.n += 1


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                             'quant_cases.txt')
    o = Out()
    qonnx_cases(o)
    qdq_cases(o)
    cast_cases(o)
    int4_cases(o)
    with open(out, 'w') as f:
        f.write('# generated by gen_quant_cases.py: do not edit (oracles: numpy per REFERENCE.md, onnxruntime)\n')
        f.write('\n'.join(o.lines) + '\n')
    print(f'{o.n} cases -> {out}')


if __name__ == '__main__':
    main()
