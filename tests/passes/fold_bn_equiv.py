#!/usr/bin/python3
"""Numeric oracle for the `fold-bn` pass: onnxruntime runs the unfolded model (the reference) and the
model after `qopt opt IN -p 'fold-bn,dce' --verify-each -o OUT` on the same inputs.

Per model it asserts
  - every output: max|a - b| <= 1e-5 * max|a| + 1e-6   (a = onnxruntime on IN, b = on OUT);
  - no BatchNormalization remains, and the rewrite is the expected one: 'fold' (no Mul/Add added:
    the BN went into its producer) or 'muladd' (one Mul and one Add per BN);
  - onnx.checker accepts OUT (the model stays valid at its opset).

Models: tests/models/resnet18_w16_op{9,13,17} and mobilenetv2_x0.5_op{9,13,17} (inputs from their
.in/ directories), libonnx-testdata's pytorch-converted BatchNorm*_eval models (opset 6, parameters
are graph inputs with defaults: kept), and small models built here with onnx.helper from seeded numpy weights covering each
producer kind (Conv 1-D/2-D/3-D with and without bias, grouped, depthwise, ConvTranspose grouped,
Gemm transB=0/1 with alpha/beta and C shaped [N], [1,N], [M,N], none; MatMul 2-D) at opsets 9, 13
and 17.

  fold_bn_equiv.py --qopt BUILD/tools/qopt [--root REPO] [-v]

Prints one line per model (BNs folded, worst error) and ends with "N passed, N failed".
"""
import argparse
import glob
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

TESTDATA = '/usr/share/libonnx-testdata/data'
PIPELINE = 'fold-bn,dce'


def count_ops(model_path):
    m = onnx.load(model_path, load_external_data=False)
    h = {}
    for n in m.graph.node:
        h[n.op_type] = h.get(n.op_type, 0) + 1
    return h


def run_ort(root, model, inputs, out_dir):
    """Runs model in onnxruntime; inputs = ('npy', DIR) or ('pb', DIR). Returns {name: array}."""
    args = ['node', os.path.join(root, 'tests/ort/run.js'), model, '-q', '--out-dir', out_dir]
    args += ['--npy-dir' if inputs[0] == 'npy' else '--pb-dir', inputs[1]]
    p = subprocess.run(args, capture_output=True, text=True, timeout=600)
    if p.returncode != 0:
        e = RuntimeError(f'run.js {os.path.basename(model)} failed ({p.returncode}): {p.stderr.strip()[-400:]}')
        e.code = p.returncode
        raise e
    return {f[:-4]: np.load(os.path.join(out_dir, f)) for f in sorted(os.listdir(out_dir)) if f.endswith('.npy')}


# ---- small models built here ----------------------------------------------------------------------

def bn_params(rng, c, prefix):
    gamma = rng.uniform(-2.0, 2.0, c).astype(np.float32)
    beta = rng.uniform(-1.0, 1.0, c).astype(np.float32)
    mean = rng.uniform(-1.0, 1.0, c).astype(np.float32)
    var = rng.uniform(0.01, 3.0, c).astype(np.float32)
    names = [f'{prefix}_{k}' for k in ('gamma', 'beta', 'mean', 'var')]
    inits = [numpy_helper.from_array(a, n) for a, n in zip((gamma, beta, mean, var), names)]
    return names, inits


def build(kind, opset, rng):
    """One graph: producer -> BatchNormalization -> Relu (or the BN output is the graph output)."""
    inits, nodes = [], []
    x_shape, y_shape = None, None
    if kind.startswith('conv') and not kind.startswith('convt'):
        # conv{D}d[_nobias][_g{G}|_dw]
        dims = int(kind[4])
        groups = 1
        cin, cout = 4, 6
        if '_dw' in kind:
            cin, cout, groups = 6, 6, 6
        elif '_g' in kind:
            groups = int(kind.split('_g')[1])
            cin, cout = 2 * groups, 3 * groups
        spatial = [7, 6, 5][:dims]
        k = [3, 2, 3][:dims]
        w = rng.normal(0, 0.5, [cout, cin // groups] + k).astype(np.float32)
        inits.append(numpy_helper.from_array(w, 'W'))
        ins = ['x', 'W']
        if '_nobias' not in kind:
            inits.append(numpy_helper.from_array(rng.normal(0, 0.5, cout).astype(np.float32), 'B'))
            ins.append('B')
        nodes.append(helper.make_node('Conv', ins, ['p'], group=groups, pads=[1] * (2 * dims), name='conv'))
        x_shape = [2, cin] + spatial
        c = cout
    elif kind.startswith('convt'):
        groups = int(kind.split('_g')[1]) if '_g' in kind else 1
        cin, cout = 2 * groups, 3 * groups
        w = rng.normal(0, 0.5, [cin, cout // groups, 3, 2]).astype(np.float32)
        b = rng.normal(0, 0.5, cout).astype(np.float32)
        inits += [numpy_helper.from_array(w, 'W'), numpy_helper.from_array(b, 'B')]
        nodes.append(helper.make_node('ConvTranspose', ['x', 'W', 'B'], ['p'], group=groups, strides=[2, 1],
                                      name='convt'))
        x_shape = [2, cin, 4, 5]
        c = cout
    elif kind.startswith('gemm'):
        # gemm_t{0,1}_c{none,n,1n,mn,m1}
        transb = int(kind.split('_t')[1][0])
        cform = kind.split('_c')[1]
        M, K, N = 5, 7, 6
        b = rng.normal(0, 0.5, [N, K] if transb else [K, N]).astype(np.float32)
        inits.append(numpy_helper.from_array(b, 'Bm'))
        ins = ['x', 'Bm']
        cshape = {'n': [N], '1n': [1, N], 'mn': [M, N], 'm1': [M, 1], 'none': None}[cform]
        if cshape is not None:
            inits.append(numpy_helper.from_array(rng.normal(0, 0.5, cshape).astype(np.float32), 'Cm'))
            ins.append('Cm')
        nodes.append(helper.make_node('Gemm', ins, ['p'], transB=transb, alpha=0.75, beta=1.5, name='gemm'))
        x_shape = [M, K]
        c = N
    elif kind == 'matmul':
        b = rng.normal(0, 0.5, [7, 6]).astype(np.float32)
        inits.append(numpy_helper.from_array(b, 'Bm'))
        nodes.append(helper.make_node('MatMul', ['x', 'Bm'], ['p'], name='mm'))
        x_shape = [5, 7]
        c = 6
    elif kind.startswith('input'):
        # BN straight on the graph input (Mul + Add), rank from the name
        rank = int(kind[5])
        x_shape = [2, 5] + [4, 3, 2][:rank - 2]
        nodes.append(helper.make_node('Relu', ['x'], ['p'], name='relu'))
        c = 5
    else:
        raise ValueError(kind)
    names, bi = bn_params(rng, c, 'bn')
    inits += bi
    nodes.append(helper.make_node('BatchNormalization', ['p'] + names, ['y'], epsilon=1e-3, name='bn'))
    nodes.append(helper.make_node('Relu', ['y'], ['out'], name='relu_out'))
    oshape = [f'd{i}' for i in range(len(x_shape))]  # same rank as x in every case here
    g = helper.make_graph(nodes, kind, [helper.make_tensor_value_info('x', TensorProto.FLOAT, x_shape)],
                          [helper.make_tensor_value_info('out', TensorProto.FLOAT, oshape),
                           helper.make_tensor_value_info('y', TensorProto.FLOAT, oshape)], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid('', opset)])
    m.ir_version = 7 if opset >= 13 else 4
    onnx.checker.check_model(m)
    return m, x_shape


SYNTH = ['conv2d', 'conv2d_nobias', 'conv2d_g2', 'conv2d_dw', 'conv1d', 'conv3d_nobias', 'convt_g1', 'convt_g2',
         'gemm_t0_cn', 'gemm_t1_c1n', 'gemm_t0_cmn', 'gemm_t1_cm1', 'gemm_t1_cnone', 'matmul', 'input3', 'input4']


def synth_models(tmp):
    out = []
    for opset in (9, 13, 17):
        for i, kind in enumerate(SYNTH):
            if kind == 'gemm_t1_cnone' and opset < 11:
                continue  # C is required before opset 11
            rng = np.random.default_rng(1000 * opset + i)
            m, xs = build(kind, opset, rng)
            d = os.path.join(tmp, f'{kind}_op{opset}')
            os.makedirs(os.path.join(d, 'in'))
            path = os.path.join(d, 'model.onnx')
            onnx.save(m, path)
            np.save(os.path.join(d, 'in', 'x.npy'), rng.normal(0, 1, xs).astype(np.float32))
            expect = 'muladd' if kind.startswith('input') else 'fold+add' if kind == 'matmul' else 'fold'
            out.append((f'synth/{kind}_op{opset}', path, ('npy', os.path.join(d, 'in')), expect))
    return out


def models(root, tmp):
    out = []
    for m in ('resnet18_w16', 'mobilenetv2_x0.5'):
        for op in (9, 13, 17):
            p = os.path.join(root, f'tests/models/{m}_op{op}.onnx')
            out.append((f'models/{m}_op{op}', p, ('npy', p[:-5] + '.in'), 'fold'))
    # opset 6, parameters are graph inputs (with default initializers) a caller may override: kept
    for p in sorted(glob.glob(os.path.join(TESTDATA, 'pytorch-converted/test_BatchNorm*_eval/model.onnx'))):
        d = os.path.dirname(p)
        out.append((f'pytorch-converted/{os.path.basename(d)}', p, ('pb', os.path.join(d, 'test_data_set_0')),
                    'kept'))
    return out + synth_models(tmp)


def check(qopt, root, name, model, inputs, expect, tmp, verbose):
    work = os.path.join(tmp, name.replace('/', '_'))
    os.makedirs(work, exist_ok=True)
    out = os.path.join(work, 'folded.onnx')
    p = subprocess.run([qopt, 'opt', model, '-p', PIPELINE, '--verify-each', '-o', out], capture_output=True,
                       text=True, timeout=600)
    if p.returncode != 0:
        return False, f'qopt failed: {p.stderr.strip()[-400:]}'
    try:
        onnx.checker.check_model(onnx.load(out))
    except Exception as e:  # noqa: BLE001 - report anything the checker raises
        return False, f'onnx.checker rejects the output: {str(e)[:300]}'
    hin, hout = count_ops(model), count_ops(out)
    nbn = hin.get('BatchNormalization', 0)
    if expect == 'kept':
        if hout != hin:
            return False, f'expected the model unchanged, op counts {hin} -> {hout}'
    elif hout.get('BatchNormalization', 0):
        return False, f"{hout['BatchNormalization']} of {nbn} BatchNormalization left"
    added = {k: hout.get(k, 0) - hin.get(k, 0) for k in ('Mul', 'Add')}
    # 'fold': into the producer; 'fold+add': MatMul scaled, shift as an Add; 'muladd': Mul and Add
    want = {'fold': {'Mul': 0, 'Add': 0}, 'fold+add': {'Mul': 0, 'Add': nbn}, 'muladd': {'Mul': nbn, 'Add': nbn},
            'kept': {'Mul': 0, 'Add': 0}}[expect]
    if added != want:
        return False, f'expected rewrite {expect} ({want}), got op count changes {added}'
    try:
        ref = run_ort(root, model, inputs, os.path.join(work, 'ref'))
        got = run_ort(root, out, inputs, os.path.join(work, 'got'))
    except RuntimeError as e:
        if expect == 'kept' and e.code == 3 and not os.path.isdir(os.path.join(work, 'ref')):
            return True, f'{nbn} BN kept; onnxruntime cannot load the original (structural check only)'
        return False, str(e)
    if sorted(ref) != sorted(got):
        return False, f'output names differ: {sorted(ref)} vs {sorted(got)}'
    worst = ''
    ok = True
    worst_rel = 0.0
    for k in ref:
        a, b = ref[k].astype(np.float64), got[k].astype(np.float64)
        if a.shape != b.shape:
            return False, f'output {k}: shape {a.shape} vs {b.shape}'
        err = float(np.max(np.abs(a - b))) if a.size else 0.0
        mag = float(np.max(np.abs(a))) if a.size else 0.0
        tol = 1e-5 * mag + 1e-6
        rel = err / mag if mag else err
        if rel >= worst_rel:
            worst_rel = rel
            worst = f'{k}: max|a-b| {err:.3g}, max|a| {mag:.3g}, rel {rel:.3g}'
        if not err <= tol:
            ok = False
            worst = f'output {k}: max|a-b| {err:.3g} > tol {tol:.3g} (max|a| {mag:.3g})'
            break
    return ok, f'{nbn} BN ({expect}); {worst}'


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--qopt', required=True)
    ap.add_argument('--root', default=os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))
    ap.add_argument('-v', action='store_true', help='print every model, not only failures')
    a = ap.parse_args()
    root = os.path.abspath(a.root)
    if not os.path.isdir(os.path.join(root, 'tests/ort/node_modules/onnxruntime-node')):
        print('tests/ort/node_modules missing (npm install in tests/ort): skipping')
        print('0 passed, 0 failed')
        return 77
    npass = nfail = 0
    with tempfile.TemporaryDirectory() as tmp:
        for name, model, inputs, expect in models(root, tmp):
            ok, msg = check(os.path.abspath(a.qopt), root, name, model, inputs, expect, tmp, a.v)
            if ok:
                npass += 1
            else:
                nfail += 1
            if a.v or not ok:
                print(f"{'ok  ' if ok else 'FAIL'} {name}: {msg}")
    print(f'{npass} passed, {nfail} failed')
    return 1 if nfail else 0


if __name__ == '__main__':
    sys.exit(main())
