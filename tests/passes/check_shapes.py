#!/usr/bin/python3
"""Compares qopt's `shape-infer` with onnx.shape_inference.infer_shapes (python3-onnx, the oracle).

For every model: `qopt opt IN.onnx -p shape-infer -o OUT.onnx` (shape-infer records what it inferred
as value_info), then for every tensor name typed by both OUT and infer_shapes(IN):
  conflict  element types differ, ranks differ, or a static dim differs   -> the model fails
  weaker    onnx knows a static dim / the rank / the elem and qopt does not (reported, not a failure)
  stronger  qopt knows more than onnx (e.g. through constant shape operands; fine)
Models infer_shapes rejects are skipped. Ends with "N passed, N failed".

  check_shapes.py --qopt BUILD/tools/qopt [--root REPO] [--sets all|node,...,models] [-v]
"""
import argparse
import concurrent.futures as cf
import glob
import os
import subprocess
import sys
import tempfile

import onnx
from onnx import shape_inference

TESTDATA = '/usr/share/libonnx-testdata/data'


def models(root, sets):
    out = []
    if 'all' in sets:
        sets = ['node', 'pytorch-converted', 'pytorch-operator', 'simple', 'real', 'models']
    for s in sets:
        if s == 'models':
            out += sorted(glob.glob(os.path.join(root, 'tests/models/*.onnx')))
            out += sorted(glob.glob(os.path.join(root, 'tests/models/*/model.onnx')))
        else:
            out += sorted(glob.glob(os.path.join(TESTDATA, s, '*/model.onnx')))
    return out


def types_of(graph):
    """name -> (elem, dims or None) for tensor-typed value_info/outputs/inputs of the main graph."""
    t = {}
    for vi in list(graph.value_info) + list(graph.output):
        tt = vi.type
        if not tt.HasField('tensor_type'):
            continue
        te = tt.tensor_type
        dims = None
        if te.HasField('shape'):
            dims = [d.dim_value if d.HasField('dim_value') else None for d in te.shape.dim]
        t[vi.name] = (te.elem_type, dims)
    for init in graph.initializer:  # Constant nodes may have become initializers: typed by their data
        t.setdefault(init.name, (init.data_type, list(init.dims)))
    return t


def compare(ours, ref):
    conflicts, weaker, stronger, both = [], 0, 0, 0
    for name, (re_, rd) in ref.items():
        if name not in ours:
            if re_ or rd is not None:
                weaker += 1
            continue
        oe, od = ours[name]
        both += 1
        if re_ and oe and re_ != oe:
            conflicts.append(f'{name}: elem {oe} vs onnx {re_}')
            continue
        if re_ and not oe:
            weaker += 1
        if rd is None or od is None:
            weaker += rd is not None and od is None
            stronger += od is not None and rd is None
            continue
        if len(rd) != len(od):
            conflicts.append(f'{name}: rank {len(od)} vs onnx {len(rd)}')
            continue
        for a, b in zip(od, rd):
            if a is not None and b is not None and a != b:
                conflicts.append(f'{name}: dims {od} vs onnx {rd}')
                break
            weaker += a is None and b is not None
            stronger += a is not None and b is None
    return conflicts, weaker, stronger, both


def check(qopt, root, model, tmp):
    name = os.path.relpath(model, TESTDATA) if model.startswith(TESTDATA) else os.path.relpath(model, root)
    # both sides start from the model without value_info and without output shapes, so declared
    # types cannot mask what either inference computes
    stripped = onnx.load(model)
    if os.path.exists(os.path.join(os.path.dirname(model), 'model.bin')) or 'extdata' in model:
        stripped = onnx.load(model, load_external_data=True)
    del stripped.graph.value_info[:]
    for o in stripped.graph.output:
        if o.type.HasField('tensor_type'):
            o.type.tensor_type.ClearField('shape')
    src = os.path.join(tmp, 'in_' + name.replace('/', '_'))
    onnx.save(stripped, src)
    try:
        ref_model = shape_inference.infer_shapes(stripped, strict_mode=True)
    except Exception as e:  # the oracle cannot handle it (e.g. opset newer than onnx 1.12 knows)
        return name, 'skip', [f'infer_shapes: {str(e).splitlines()[0][:200]}'], 0, 0
    out = os.path.join(tmp, name.replace('/', '_'))
    p = subprocess.run([qopt, 'opt', src, '-p', 'shape-infer', '--verify-each', '-o', out],
                       capture_output=True, text=True, timeout=600)
    if p.returncode != 0:
        return name, 'fail', ['qopt: ' + l for l in p.stderr.strip().splitlines()[-3:]], 0, 0
    ours = types_of(onnx.load(out).graph)
    ref = types_of(ref_model.graph)
    conflicts, weaker, stronger, both = compare(ours, ref)
    if conflicts:
        return name, 'fail', conflicts[:5], weaker, stronger
    return name, 'ok', [], weaker, stronger


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--qopt', required=True)
    ap.add_argument('--root', default=os.path.join(os.path.dirname(__file__), '..', '..'))
    ap.add_argument('--sets', default='all')
    ap.add_argument('-j', type=int, default=os.cpu_count() or 2)
    ap.add_argument('-v', action='store_true')
    a = ap.parse_args()
    root = os.path.abspath(a.root)
    ms = models(root, a.sets.split(','))
    n = {'ok': 0, 'fail': 0, 'skip': 0}
    tw = ts = 0
    exact = 0
    with tempfile.TemporaryDirectory() as tmp, cf.ThreadPoolExecutor(a.j) as ex:
        for name, st, lines, weaker, stronger in ex.map(lambda m: check(a.qopt, root, m, tmp), ms):
            n[st] += 1
            tw += weaker
            ts += stronger
            if st == 'ok' and not weaker:
                exact += 1
            if st == 'fail' or (a.v and (st == 'skip' or weaker)):
                print(f'{st.upper()}: {name}' + (f' ({weaker} dims/types less precise than onnx)' if weaker else ''))
                for l in lines:
                    print(f'    {l}')
    print(f"shape-infer vs onnx.shape_inference: {n['ok']} agree ({exact} at least as precise everywhere), "
          f"{n['fail']} conflict, {n['skip']} skipped; {tw} facts only onnx knows, {ts} only qopt knows")
    print(f"{n['ok']} passed, {n['fail']} failed")
    return 1 if n['fail'] else 0


if __name__ == '__main__':
    sys.exit(main())
