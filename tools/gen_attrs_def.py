#!/usr/bin/python3
"""tools/gen_attrs_def.py — writes ir/attrs.def, the attribute and signature table of every op in ir/ops.def.

Run with Debian's /usr/bin/python3 (python3-onnx):  /usr/bin/python3 tools/gen_attrs_def.py [out]
(default out: ir/attrs.def next to this script's repo). The generated file is committed and is the
source of truth in the build; CI does not run this script.

Facts come from onnx.defs.get_all_schemas_with_history() (python3-onnx 1.12 knows opsets 1..17).
Schema versions 18..21 of the ops qopt lists (onnx 1.13..1.16) are not in that package; they are
transcribed below in SUPPLEMENT from the ONNX operator changelog (docs/Changelog.md), together with
the QONNX custom ops (shared/REFERENCE.md §3.1). MAX_OPSET bounds what the table describes.
"""
import os
import re
import sys

import numpy
import onnx
from onnx import defs, helper

MAX_OPSET = 21
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

KIND = {1: "FLOAT", 2: "INT", 3: "STRING", 4: "TENSOR", 5: "GRAPH", 6: "FLOATS", 7: "INTS",
        8: "STRINGS", 9: "TENSORS", 10: "GRAPHS", 11: "SPARSE_TENSOR", 12: "SPARSE_TENSORS",
        13: "TYPE_PROTO", 14: "TYPE_PROTOS"}
F, I, S, T, G, FS, IS, SS = 1, 2, 3, 4, 5, 6, 7, 8
R = True   # required
O = False  # optional

# (op_type, since): attrs {name: (kind, required, default text or None)}, ins/outs one letter per
# formal parameter (S single, O optional, V variadic), irange/orange (min, max; -1 = unbounded).
SUPPLEMENT = {
    ('AveragePool', 19): dict(attrs={'auto_pad': (S, O, 'NOTSET'), 'ceil_mode': (I, O, '0'), 'count_include_pad': (I, O, '0'), 'dilations': (IS, O, None), 'kernel_shape': (IS, R, None), 'pads': (IS, O, None), 'strides': (IS, O, None)}, ins='S', outs='S', irange=(1, 1), orange=(1, 1)),
    ('Cast', 19): dict(attrs={'saturate': (I, O, '1'), 'to': (I, R, None)}, ins='S', outs='S', irange=(1, 1), orange=(1, 1)),
    ('Cast', 21): dict(attrs={'saturate': (I, O, '1'), 'to': (I, R, None)}, ins='S', outs='S', irange=(1, 1), orange=(1, 1)),
    ('CastLike', 19): dict(attrs={'saturate': (I, O, '1')}, ins='SS', outs='S', irange=(2, 2), orange=(1, 1)),
    ('CastLike', 21): dict(attrs={'saturate': (I, O, '1')}, ins='SS', outs='S', irange=(2, 2), orange=(1, 1)),
    ('Constant', 19): dict(attrs={'sparse_value': (11, O, None), 'value': (T, O, None), 'value_float': (F, O, None), 'value_floats': (FS, O, None), 'value_int': (I, O, None), 'value_ints': (IS, O, None), 'value_string': (S, O, None), 'value_strings': (SS, O, None)}, ins='', outs='S', irange=(0, 0), orange=(1, 1)),
    ('Constant', 21): dict(attrs={'sparse_value': (11, O, None), 'value': (T, O, None), 'value_float': (F, O, None), 'value_floats': (FS, O, None), 'value_int': (I, O, None), 'value_ints': (IS, O, None), 'value_string': (S, O, None), 'value_strings': (SS, O, None)}, ins='', outs='S', irange=(0, 0), orange=(1, 1)),
    ('ConstantOfShape', 20): dict(attrs={'value': (T, O, None)}, ins='S', outs='S', irange=(1, 1), orange=(1, 1)),
    ('ConstantOfShape', 21): dict(attrs={'value': (T, O, None)}, ins='S', outs='S', irange=(1, 1), orange=(1, 1)),
    ('DequantizeLinear', 19): dict(attrs={'axis': (I, O, '1')}, ins='SSO', outs='S', irange=(2, 3), orange=(1, 1)),
    ('DequantizeLinear', 21): dict(attrs={'axis': (I, O, '1'), 'block_size': (I, O, '0')}, ins='SSO', outs='S', irange=(2, 3), orange=(1, 1)),
    ('Equal', 19): dict(attrs={}, ins='SS', outs='S', irange=(2, 2), orange=(1, 1)),
    ('Flatten', 21): dict(attrs={'axis': (I, O, '1')}, ins='S', outs='S', irange=(1, 1), orange=(1, 1)),
    ('Gelu', 20): dict(attrs={'approximate': (S, O, 'none')}, ins='S', outs='S', irange=(1, 1), orange=(1, 1)),
    ('Identity', 19): dict(attrs={}, ins='S', outs='S', irange=(1, 1), orange=(1, 1)),
    ('Identity', 21): dict(attrs={}, ins='S', outs='S', irange=(1, 1), orange=(1, 1)),
    ('If', 19): dict(attrs={'else_branch': (G, R, None), 'then_branch': (G, R, None)}, ins='S', outs='V', irange=(1, 1), orange=(1, -1)),
    ('If', 21): dict(attrs={'else_branch': (G, R, None), 'then_branch': (G, R, None)}, ins='S', outs='V', irange=(1, 1), orange=(1, -1)),
    ('IsInf', 20): dict(attrs={'detect_negative': (I, O, '1'), 'detect_positive': (I, O, '1')}, ins='S', outs='S', irange=(1, 1), orange=(1, 1)),
    ('IsNaN', 20): dict(attrs={}, ins='S', outs='S', irange=(1, 1), orange=(1, 1)),
    ('Loop', 19): dict(attrs={'body': (G, R, None)}, ins='OOV', outs='V', irange=(2, -1), orange=(1, -1)),
    ('Loop', 21): dict(attrs={'body': (G, R, None)}, ins='OOV', outs='V', irange=(2, -1), orange=(1, -1)),
    ('LpPool', 18): dict(attrs={'auto_pad': (S, O, 'NOTSET'), 'ceil_mode': (I, O, '0'), 'dilations': (IS, O, None), 'kernel_shape': (IS, R, None), 'p': (I, O, '2'), 'pads': (IS, O, None), 'strides': (IS, O, None)}, ins='S', outs='S', irange=(1, 1), orange=(1, 1)),
    ('Mish', 18): dict(attrs={}, ins='S', outs='S', irange=(1, 1), orange=(1, 1)),
    ('Pad', 18): dict(attrs={'mode': (S, O, 'constant')}, ins='SSOO', outs='S', irange=(2, 4), orange=(1, 1)),
    ('Pad', 19): dict(attrs={'mode': (S, O, 'constant')}, ins='SSOO', outs='S', irange=(2, 4), orange=(1, 1)),
    ('Pad', 21): dict(attrs={'mode': (S, O, 'constant')}, ins='SSOO', outs='S', irange=(2, 4), orange=(1, 1)),
    ('QLinearMatMul', 21): dict(attrs={}, ins='SSSSSSSS', outs='S', irange=(8, 8), orange=(1, 1)),
    ('QuantizeLinear', 19): dict(attrs={'axis': (I, O, '1'), 'saturate': (I, O, '1')}, ins='SSO', outs='S', irange=(2, 3), orange=(1, 1)),
    ('QuantizeLinear', 21): dict(attrs={'axis': (I, O, '1'), 'block_size': (I, O, '0'), 'output_dtype': (I, O, '0'), 'saturate': (I, O, '1')}, ins='SSO', outs='S', irange=(2, 3), orange=(1, 1)),
    ('Reshape', 19): dict(attrs={'allowzero': (I, O, '0')}, ins='SS', outs='S', irange=(2, 2), orange=(1, 1)),
    ('Reshape', 21): dict(attrs={'allowzero': (I, O, '0')}, ins='SS', outs='S', irange=(2, 2), orange=(1, 1)),
    ('Resize', 18): dict(attrs={'antialias': (I, O, '0'), 'axes': (IS, O, None), 'coordinate_transformation_mode': (S, O, 'half_pixel'), 'cubic_coeff_a': (F, O, '-0.75'), 'exclude_outside': (I, O, '0'), 'extrapolation_value': (F, O, '0.0'), 'keep_aspect_ratio_policy': (S, O, 'stretch'), 'mode': (S, O, 'nearest'), 'nearest_mode': (S, O, 'round_prefer_floor')}, ins='SOOO', outs='S', irange=(1, 4), orange=(1, 1)),
    ('Resize', 19): dict(attrs={'antialias': (I, O, '0'), 'axes': (IS, O, None), 'coordinate_transformation_mode': (S, O, 'half_pixel'), 'cubic_coeff_a': (F, O, '-0.75'), 'exclude_outside': (I, O, '0'), 'extrapolation_value': (F, O, '0.0'), 'keep_aspect_ratio_policy': (S, O, 'stretch'), 'mode': (S, O, 'nearest'), 'nearest_mode': (S, O, 'round_prefer_floor')}, ins='SOOO', outs='S', irange=(1, 4), orange=(1, 1)),
    ('Scan', 19): dict(attrs={'body': (G, R, None), 'num_scan_inputs': (I, R, None), 'scan_input_axes': (IS, O, None), 'scan_input_directions': (IS, O, None), 'scan_output_axes': (IS, O, None), 'scan_output_directions': (IS, O, None)}, ins='V', outs='V', irange=(1, -1), orange=(1, -1)),
    ('Scan', 21): dict(attrs={'body': (G, R, None), 'num_scan_inputs': (I, R, None), 'scan_input_axes': (IS, O, None), 'scan_input_directions': (IS, O, None), 'scan_output_axes': (IS, O, None), 'scan_output_directions': (IS, O, None)}, ins='V', outs='V', irange=(1, -1), orange=(1, -1)),
    ('ScatterElements', 18): dict(attrs={'axis': (I, O, '0'), 'reduction': (S, O, 'none')}, ins='SSS', outs='S', irange=(3, 3), orange=(1, 1)),
    ('ScatterND', 18): dict(attrs={'reduction': (S, O, 'none')}, ins='SSS', outs='S', irange=(3, 3), orange=(1, 1)),
    ('Shape', 19): dict(attrs={'end': (I, O, None), 'start': (I, O, '0')}, ins='S', outs='S', irange=(1, 1), orange=(1, 1)),
    ('Shape', 21): dict(attrs={'end': (I, O, None), 'start': (I, O, '0')}, ins='S', outs='S', irange=(1, 1), orange=(1, 1)),
    ('Size', 19): dict(attrs={}, ins='S', outs='S', irange=(1, 1), orange=(1, 1)),
    ('Size', 21): dict(attrs={}, ins='S', outs='S', irange=(1, 1), orange=(1, 1)),
    ('Split', 18): dict(attrs={'axis': (I, O, '0'), 'num_outputs': (I, O, None)}, ins='SO', outs='V', irange=(1, 2), orange=(1, -1)),
    ('Squeeze', 21): dict(attrs={}, ins='SO', outs='S', irange=(1, 2), orange=(1, 1)),
    ('Transpose', 21): dict(attrs={'perm': (IS, O, None)}, ins='S', outs='S', irange=(1, 1), orange=(1, 1)),
    ('Unsqueeze', 21): dict(attrs={}, ins='SS', outs='S', irange=(2, 2), orange=(1, 1)),
}
# Reduce ops: opset 18 moved `axes` to an input (ReduceSum did so at 13); ReduceMax/Min-20 add types.
for _op in ('ReduceL1', 'ReduceL2', 'ReduceLogSum', 'ReduceLogSumExp', 'ReduceMax', 'ReduceMean',
            'ReduceMin', 'ReduceProd', 'ReduceSumSquare'):
    for _v in ((18, 20) if _op in ('ReduceMax', 'ReduceMin') else (18,)):
        SUPPLEMENT[(_op, _v)] = dict(attrs={'keepdims': (I, O, '1'), 'noop_with_empty_axes': (I, O, '0')},
                                     ins='SO', outs='S', irange=(1, 2), orange=(1, 1))

# QONNX custom ops (REFERENCE.md §3.1; qonnx get_nodeattr_types). One signature for all domain
# versions: Trunc v1 has 5 inputs, v2 adds out_scale.
QONNX = {
    'Quant': dict(attrs={'narrow': (I, R, '1'), 'rounding_mode': (S, O, 'ROUND'), 'signed': (I, R, '1')},
                  ins='SSSS', outs='S', irange=(4, 4), orange=(1, 1)),
    'BipolarQuant': dict(attrs={}, ins='SS', outs='S', irange=(2, 2), orange=(1, 1)),
    'Trunc': dict(attrs={'narrow': (I, O, '0'), 'rounding_mode': (S, R, 'FLOOR'), 'signed': (I, O, '1')},
                  ins='SSSSSO', outs='S', irange=(5, 6), orange=(1, 1)),
}


def read_ops():
    text = open(os.path.join(ROOT, 'ir', 'ops.def')).read()
    return re.findall(r'^QO_OP\((\w+),\s*"(\w+)",\s*(D_ONNX|D_QONNX)', text, re.M)


def fmt_default(a):
    """Text of an ONNX schema attribute default, or None when it has none."""
    dv = a.default_value
    if dv is None or dv.type == 0:
        return None
    v = helper.get_attribute_value(dv)
    if isinstance(v, bytes):
        return v.decode('utf-8', 'replace')
    if isinstance(v, float):
        return str(numpy.float32(v))  # shortest text of the float32 value
    if isinstance(v, int):
        return str(v)
    if isinstance(v, onnx.TensorProto):
        arr = onnx.numpy_helper.to_array(v)
        return 'tensor(%s, %s)' % (onnx.TensorProto.DataType.Name(v.data_type).lower(), arr.tolist())
    if isinstance(v, (list, tuple)):
        return '[' + ', '.join(x.decode() if isinstance(x, bytes) else repr(x) for x in v) + ']'
    return str(v)


OPT = {0: 'S', 1: 'O', 2: 'V'}


def schema_versions():
    """{op_type: {since: dict(...)}} for the default domain, opsets <= MAX_OPSET."""
    out = {}
    for s in defs.get_all_schemas_with_history():
        if s.domain != '' or s.since_version > MAX_OPSET:
            continue
        big = 2 ** 30
        out.setdefault(s.name, {})[s.since_version] = dict(
            attrs={n: (int(a.type), bool(a.required), fmt_default(a)) for n, a in s.attributes.items()},
            ins=''.join(OPT[int(p.option)] for p in s.inputs),
            outs=''.join(OPT[int(p.option)] for p in s.outputs),
            irange=(s.min_input, -1 if s.max_input >= big else s.max_input),
            orange=(s.min_output, -1 if s.max_output >= big else s.max_output),
            deprecated=bool(s.deprecated))
    for (op, v), d in SUPPLEMENT.items():
        if v <= defs.onnx_opset_version():
            continue  # the installed onnx knows it
        out.setdefault(op, {})[v] = dict(d, deprecated=False)
    return out


def cstr(s):
    return '"' + s.replace('\\', '\\\\').replace('"', '\\"').replace('\n', '\\n') + '"'


def main():
    dst = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, 'ir', 'attrs.def')
    ops = read_ops()
    sv = schema_versions()
    vers_lines, attr_lines = [], []
    for enum, name, dom in ops:
        if dom == 'D_QONNX':
            versions = {1: dict(QONNX[name], deprecated=False)}
        else:
            if name not in sv:
                sys.exit('no ONNX schema for %s' % name)
            versions = sv[name]
        order = sorted(versions)
        for v in order:
            d = versions[v]
            vers_lines.append('QO_OPVER(%-26s %2d, %d, %2d, %2d, %2d, %2d, %-12s %s)' % (
                enum + ',', v, int(d['deprecated']), d['irange'][0], d['irange'][1],
                d['orange'][0], d['orange'][1], cstr(d['ins']) + ',', cstr(d['outs'])))
        # one row per stretch of consecutive versions with identical (kind, required, default)
        names = sorted({n for v in order for n in versions[v]['attrs']})
        for n in names:
            stretches = []  # [spec, first, last]
            for v in order:
                spec = versions[v]['attrs'].get(n)
                if stretches and stretches[-1][2] == 0 and stretches[-1][0] != spec:
                    stretches[-1][2] = v - 1  # changed or removed at v
                if spec and (not stretches or stretches[-1][2] != 0):
                    stretches.append([spec, v, 0])
            for spec, first, last in stretches:
                attr_lines.append('QO_ATTR(%-26s %-28s QO_ATTR_%-7s %d, %2d, %2d, %s)' % (
                    enum + ',', cstr(n) + ',', KIND[spec[0]] + ',', int(spec[1]), first, last,
                    cstr(spec[2]) if spec[2] is not None else 'NULL'))
    with open(dst, 'w') as f:
        f.write(HEADER % (onnx.__version__, defs.onnx_opset_version(), MAX_OPSET))
        f.write('\n/* ---- signatures: one row per schema version ---- */\n')
        f.write('\n'.join(vers_lines) + '\n')
        f.write('\n/* ---- attributes ---- */\n')
        f.write('\n'.join(attr_lines) + '\n')
        f.write('\n#undef QO_OPVER\n#undef QO_ATTR\n')


HEADER = '''/* ir/attrs.def — GENERATED by tools/gen_attrs_def.py from ONNX operator schemas (python3-onnx %s,
 * opsets 1..%d; later versions up to opset %d and the QONNX ops transcribed in the generator). Do not
 * edit by hand: change the generator and rerun it. Include after defining QO_OPVER and/or QO_ATTR
 * (either may be left undefined; this file undefines both at its end).
 *
 * QO_OPVER(ENUM, SINCE, DEPRECATED, IMIN, IMAX, OMIN, OMAX, INS, OUTS)
 *   one row per ONNX schema version of op QO_OP_<ENUM>: the schema applies to opsets SINCE up to the
 *   next row's SINCE - 1. IMAX/OMAX -1 = unbounded. INS/OUTS: one letter per formal parameter,
 *   S single (required), O optional, V variadic (last parameter only).
 *   QONNX ops have one row with SINCE 1 covering every qonnx domain version.
 * QO_ATTR(ENUM, NAME, KIND, REQUIRED, FIRST, LAST, DEFAULT)
 *   attribute NAME of kind KIND (qo_attr_kind) exists in opsets FIRST..LAST (LAST 0 = still does)
 *   with this REQUIRED flag; DEFAULT is the schema's default as text (NULL = none), for docs.
 *   An attribute whose kind, required flag or default changed has one row per stretch. */
#ifndef QO_OPVER
#define QO_OPVER(e, since, depr, imin, imax, omin, omax, ins, outs)
#endif
#ifndef QO_ATTR
#define QO_ATTR(e, name, kind, req, first, last, dflt)
#endif
'''

if __name__ == '__main__':
    main()
