#!/usr/bin/env python3
"""Numeric equivalence oracle for the float-preserving passes.

For every model: `qopt opt IN.onnx -p PIPELINE --verify-each -o OUT.onnx`, then
`node tests/ort/compare.js IN.onnx OUT.onnx` (onnxruntime, same inputs, bit-identical outputs).
Models onnxruntime cannot load or run in their original form are skipped (counted separately).

  run_equiv.py --qopt BUILD/tools/qopt [--root REPO] [--sets pytorch-converted,models] [-j N] [-v]

Sets: models (tests/models), and the libonnx-testdata folders node, pytorch-converted,
pytorch-operator, simple, real; 'all' = every set. Default: pytorch-converted,models. Ends with "N passed, N failed".
"""
import argparse
import concurrent.futures as cf
import glob
import os
import subprocess
import sys
import tempfile

TESTDATA = '/usr/share/libonnx-testdata/data'
PIPELINE = 'canonicalize,shape-infer,const-fold,dce'


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


def check(qopt, root, pipeline, model, tmp):
    name = os.path.relpath(model, TESTDATA) if model.startswith(TESTDATA) else os.path.relpath(model, root)
    out = os.path.join(tmp, name.replace('/', '_'))
    p = subprocess.run([qopt, 'opt', model, '-p', pipeline, '--verify-each', '-o', out],
                       capture_output=True, text=True, timeout=600)
    if p.returncode != 0:
        # a model the frontend rejects is not a pass failure, but say so
        return name, 'qopt-failed', p.stderr.strip().splitlines()[-3:]
    args = ['node', os.path.join(root, 'tests/ort/compare.js'), model, out]
    c = subprocess.run(args, capture_output=True, text=True, timeout=600)
    if c.returncode == 0:
        return name, 'ok', []
    if c.returncode in (3, 4):
        return name, 'skip', (c.stdout + c.stderr).strip().splitlines()[-2:]
    # the harness itself may not handle the model (sequence inputs ...): compare the original with itself
    b = subprocess.run(['node', os.path.join(root, 'tests/ort/compare.js'), model, model],
                       capture_output=True, text=True, timeout=600)
    if b.returncode != 0:
        return name, 'skip', ['compare.js cannot compare the original with itself'] + \
            (b.stdout + b.stderr).strip().splitlines()[-1:]
    return name, 'mismatch', (c.stdout + c.stderr).strip().splitlines()[-6:]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--qopt', required=True)
    ap.add_argument('--root', default=os.path.join(os.path.dirname(__file__), '..', '..'))
    ap.add_argument('--sets', default='pytorch-converted,models')
    ap.add_argument('--pipeline', default=PIPELINE)
    ap.add_argument('-j', type=int, default=os.cpu_count() or 2)
    ap.add_argument('-v', action='store_true')
    a = ap.parse_args()
    root = os.path.abspath(a.root)
    if not os.path.exists(os.path.join(root, 'tests/ort/compare.js')):
        print('tests/ort/compare.js missing: skipping')
        print('0 passed, 0 failed')
        return 77
    ms = models(root, a.sets.split(','))
    counts = {'ok': 0, 'skip': 0, 'mismatch': 0, 'qopt-failed': 0}
    with tempfile.TemporaryDirectory() as tmp, cf.ThreadPoolExecutor(a.j) as ex:
        futs = [ex.submit(check, a.qopt, root, a.pipeline, m, tmp) for m in ms]
        for f in futs:
            name, st, lines = f.result()
            counts[st] += 1
            if st != 'ok' and (a.v or st in ('mismatch', 'qopt-failed')):
                print(f'{st.upper()}: {name}')
                for l in lines:
                    print(f'    {l}')
    print(f"pipeline '{a.pipeline}': {counts['ok']} bit-identical, {counts['mismatch']} mismatched, "
          f"{counts['qopt-failed']} qopt failures, {counts['skip']} skipped (onnxruntime cannot run the original)")
    failed = counts['mismatch'] + counts['qopt-failed']
    print(f"{counts['ok']} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
