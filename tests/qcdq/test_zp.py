#!/usr/bin/python3
"""tests/qcdq/test_zp.py — the zero-point order difference (REFERENCE.md §4.2.2), measured.

A QONNX Quant node adds the zero point before rounding (y = rint(clamp(x/s + z)) - z), QuantizeLinear after
(q = clamp(rint(x/s)) + z). In float32, x/s + z loses low bits of x/s when z != 0, so inputs a few ulps
off a tie round differently. Model: x (1, N) -> Quant(s = 0.1, zp, 8 bits unsigned) -> y, with x made of
near-tie values (k + 0.5) * s and their neighbours 1..3 ulps away, plus random values.

Checks, with numpy float32 as the independent oracle of both formulas:
  - lowered QCDQ file: onnxruntime == qopt's JIT on the lowered IR, bit for bit (the contract), and both
    == numpy's QuantizeLinear formula;
  - Quant-form IR: qopt's JIT == numpy's Quant formula, bit for bit;
  - the measured mismatch count between the two forms equals numpy's prediction and is > 0 for zp = 128
    (the case hits it), and is 0 for zp = 0 (value equality; Quant gives -0 where DequantizeLinear gives +0);
  - per-channel activations (QONNX (1, C, 1) scale -> 1-D scale, axis 1), with zero points 0 and 7;
  - 12-bit unsigned at opset 21 (uint16 + Clip): onnxruntime loads it and equals the JIT (Debian's
    python3-onnx 1.12 stops at opset 17, so its checker is skipped for this one file).
Prints "N passed, N failed". Usage: test_zp.py --tool QCDQ_TOOL --work DIR
"""
import argparse
import os
import subprocess
import sys

import numpy as np
import onnx
from onnx import TensorProto as T
from onnx import helper as h

HERE = os.path.dirname(os.path.abspath(__file__))
passed = failed = 0


def check(cond, what):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print('FAIL: ' + what, flush=True)
    return cond


def sh(cmd):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return r.returncode, r.stdout + r.stderr


def model(path, scale, zp, bits, signed, opset):
    n = h.make_node('Quant', ['x', 's', 'z', 'b'], ['y'], domain='qonnx.custom_op.general', name='act/Quant',
                    narrow=0, signed=signed, rounding_mode='ROUND')
    pc = isinstance(scale, list)  # per-channel along axis 1 of (1, C, N): QONNX's (1, C, 1) scale
    shape = [1, len(scale), None] if pc else [1, None]
    g = h.make_graph([n], 'zp', [h.make_tensor_value_info('x', T.FLOAT, shape)],
                     [h.make_tensor_value_info('y', T.FLOAT, shape)],
                     [h.make_tensor('s', T.FLOAT, [1, len(scale), 1] if pc else [], scale if pc else [scale]),
                      h.make_tensor('z', T.FLOAT, [], [float(zp)]),
                      h.make_tensor('b', T.FLOAT, [], [float(bits)])])
    m = h.make_model(g, opset_imports=[h.make_opsetid('', opset), h.make_opsetid('qonnx.custom_op.general', 2)])
    m.ir_version = 8
    onnx.save(m, path)


def inputs(scale):
    if isinstance(scale, list):  # per channel: each channel gets the near-tie set of its own scale
        return np.stack([inputs(c)[0] for c in scale])[None]
    s = np.float32(scale)
    ties = (np.arange(-140, 300, dtype=np.float32) + np.float32(0.5)) * s
    xs = [ties]
    for k in (1, 2, 3):
        up, dn = ties.copy(), ties.copy()
        for _ in range(k):
            up = np.nextafter(up, np.float32(np.inf))
            dn = np.nextafter(dn, np.float32(-np.inf))
        xs += [up, dn]
    xs.append(np.random.default_rng(0).uniform(-20, 40, 4000).astype(np.float32))
    return np.concatenate(xs).astype(np.float32).reshape(1, -1)


def pscale(s, x):
    return np.array(s, np.float32).reshape(1, -1, 1) if isinstance(s, list) else np.float32(s)


def numpy_quant(x, s, z, lo, hi):
    s, z = pscale(s, x), np.float32(z)
    y = (x / s).astype(np.float32) + z
    y = np.clip(y, np.float32(lo), np.float32(hi))
    y = np.round(y)  # half to even
    return ((y - z) * s).astype(np.float32)


def numpy_qcdq(x, s, z, lo, hi, qlo, qhi):
    s = pscale(s, x)
    q = np.clip(np.round((x / s).astype(np.float32)), qlo - z, qhi - z).astype(np.int64) + z
    q = np.clip(q, lo, hi)
    return ((q - z).astype(np.float32) * s).astype(np.float32)


def run_case(a, tag, scale, zp, bits, signed, opset, expect_diff):
    d = os.path.join(a.work, tag)
    os.makedirs(d, exist_ok=True)
    src, low, xf = os.path.join(d, 'q.onnx'), os.path.join(d, 'lowered.onnx'), os.path.join(d, 'x.npy')
    model(src, scale, zp, bits, signed, opset)
    x = inputs(scale)
    np.save(xf, x)
    for f in (low, os.path.join(d, 'ort.npy'), os.path.join(d, 'jl', 'out_0.npy'), os.path.join(d, 'jq', 'out_0.npy')):
        if os.path.exists(f):
            os.remove(f)
    rc, log = sh([a.tool, 'lower', src, low, '--opset', str(opset)])
    if not check(rc == 0, f'{tag}: lower ({log.strip()})'):
        return
    if zp:
        check('zero point != 0' in log, f'{tag}: lowering notes the zero-point difference ({log.strip()})')
    lm = onnx.load(low)
    if opset <= onnx.defs.onnx_opset_version():
        try:
            onnx.checker.check_model(lm, full_check=True)
            check(True, '')
        except Exception as e:  # noqa: BLE001
            check(False, f'{tag}: onnx.checker: {e}')
    else:  # Debian's python3-onnx 1.12 knows opsets up to 17; onnxruntime below is the check then
        print(f'{tag}: opset {opset} is above python3-onnx {onnx.__version__}\'s {onnx.defs.onnx_opset_version()}: checker skipped')
    want = (['QuantizeLinear', 'DequantizeLinear'] if bits == 8 else ['QuantizeLinear', 'Clip', 'DequantizeLinear']
            if bits < 8 else ['QuantizeLinear', 'DequantizeLinear', 'Clip'])  # > 8 bits: float Clip after DQ
    check([n.op_type for n in lm.graph.node] == want,
          f'{tag}: node list {[n.op_type for n in lm.graph.node]}')
    for sub, extra in (('jl', ['--import', '--lower', '--opset', str(opset)]), ('jq', ['--import'])):
        os.makedirs(os.path.join(d, sub), exist_ok=True)
        rc, log = sh([a.tool, 'run', src, xf, os.path.join(d, sub)] + extra)
        check(rc == 0, f'{tag}: JIT {sub} ({log.strip()})')
    rc, log = sh(['node', os.path.join(HERE, 'ort_run.js'), low, xf, os.path.join(d, 'ort.npy')])
    if not check(rc == 0, f'{tag}: onnxruntime ({log.strip()})'):
        return
    ort = np.load(os.path.join(d, 'ort.npy'))
    jl = np.load(os.path.join(d, 'jl', 'out_0.npy'))
    jq = np.load(os.path.join(d, 'jq', 'out_0.npy'))
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    qlo, qhi = (lo, hi) if bits == 8 else ((-32768, 32767) if signed else (0, 65535))
    nq, nc = numpy_quant(x, scale, zp, lo, hi), numpy_qcdq(x, scale, zp, lo, hi, qlo, qhi)
    bits_ = lambda v: v.view(np.uint32)  # noqa: E731
    check(int((bits_(jl) != bits_(ort)).sum()) == 0, f'{tag}: JIT on the lowered IR vs onnxruntime, bit for bit')
    check(int((bits_(ort) != bits_(nc)).sum()) == 0, f'{tag}: onnxruntime vs numpy QuantizeLinear formula')
    check(int((bits_(jq) != bits_(nq)).sum()) == 0, f'{tag}: JIT on the Quant node vs numpy Quant formula')
    measured = int((jq != ort).sum())
    predicted = int((nq != nc).sum())
    print(f'{tag}: zero point {zp}: Quant vs QCDQ differ on {measured} of {x.size} inputs '
          f'(numpy predicts {predicted}); {int(((jq != ort) & (np.abs(jq - ort) > 1.5 * pscale(scale, x))).sum())} by more than one step')
    check(measured == predicted, f'{tag}: measured mismatches {measured} == predicted {predicted}')
    check((measured > 0) == expect_diff, f'{tag}: mismatches {"expected" if expect_diff else "not expected"} ({measured})')


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--tool', required=True)
    ap.add_argument('--work', required=True)
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    run_case(a, 'u8_zp128', 0.1, 128, 8, 0, 13, True)
    run_case(a, 'u8_zp0', 0.1, 0, 8, 0, 13, False)
    run_case(a, 'i4_zp0', 0.1, 0, 4, 1, 13, False)
    run_case(a, 'u12_opset21', 0.1, 0, 12, 0, 21, False)
    run_case(a, 'i4_per_channel', [0.1, 0.25, 0.0703125], 0, 4, 1, 13, False)
    run_case(a, 'u8_per_channel_zp7', [0.1, 0.3, 0.0703125], 7, 8, 0, 13, True)
    print(f'{passed} passed, {failed} failed')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
