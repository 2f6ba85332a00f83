#!/usr/bin/python3
"""tests/qcdq/run_qcdq.py — import-quant + lower-qcdq on Brevitas's exports, against oracles we did not write:
Debian's python3-onnx checker, onnxruntime (tests/qcdq/ort_run.js) and Brevitas's own QCDQ exports.

For every Brevitas QONNX export (digits PTQ/QAT, nets):
  1a  qcdq_tool lower (load, import-quant, lower-qcdq, write): onnx.checker.check_model(full_check=True)
      passes; no qonnx domain, no qopt_* attribute, opset >= 13 in the file;
  1b  onnxruntime (optimizations off) on our file == qopt's JIT on the lowered IR, bit for bit, on every
      activation quantizer's result (added as graph outputs: "probes") and every quantized output; also ==
      qopt's JIT on the Quant-form IR (value equality: Quant gives -0 where DQ gives +0). Float outputs
      computed after the last quantizer (LeNet's and ResNet-8's final Gemm) are reported, not asserted:
      their summation order is the float kernels' business, not QCDQ's;
  1c  onnxruntime on Brevitas's QCDQ export of the same model vs on ours: exact-match rate (reported).
For every Brevitas QCDQ export:
  2   lowered again: checker passes; onnxruntime on ours == onnxruntime on the original, bit for bit;
      qopt's JIT on the imported (Quant-form) IR == onnxruntime on the original (zero points are 0 here).
  3   models whose float layers (Conv summation order) make later quantizer inputs differ (ResNet-8): every
      activation chain alone, fed onnxruntime's own input tensor, in qopt's JIT == onnxruntime, bit for bit;
  4   onnxruntime with graph optimizations on vs off on our digits files: mismatch rate (reported).
Prints a summary and "N passed, N failed". Usage:
  run_qcdq.py --tool QCDQ_TOOL --shared DIR --data DIR --work DIR [--qopt QOPT]
(--shared is shared/peers/brevitas; when absent the copies in --data are used).
"""
import argparse
import glob
import json
import os
import subprocess
import sys

import numpy as np
import onnx

# models with float Conv layers between quantizers: number of leading quantized tensors that must match
FLOAT_ORDER = {'resnet8_w8a8_perch': 2}
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


def bits(a):
    return np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)


def mkdir(d):
    if os.path.isdir(d):
        for f in glob.glob(os.path.join(d, 'out_*.npy')):
            os.remove(f)
    os.makedirs(d, exist_ok=True)
    return d


def locate(shared, data):
    """(name, qonnx path or None, qcdq path or None, x path) for every model found."""
    out = []
    for root in (shared, data):
        if not root or not os.path.isdir(root):
            continue
        dd = os.path.join(root, 'digits') if os.path.isdir(os.path.join(root, 'digits')) else root
        xd = os.path.join(dd, 'digits_test_x.npy')
        names = sorted({os.path.basename(p)[:-len('_qonnx.onnx')] for p in glob.glob(os.path.join(dd, 'digits_*_qonnx.onnx'))} |
                       {os.path.basename(p)[:-len('_qcdq.onnx')] for p in glob.glob(os.path.join(dd, 'digits_*_qcdq.onnx'))})
        for n in names:
            q, c = os.path.join(dd, n + '_qonnx.onnx'), os.path.join(dd, n + '_qcdq.onnx')
            out.append((n, q if os.path.exists(q) else None, c if os.path.exists(c) else None, xd))
        nd = os.path.join(root, 'nets') if os.path.isdir(os.path.join(root, 'nets')) else root
        for n in ('lenet_w4a4', 'mlp_sfc_w2a2', 'resnet8_w8a8_perch'):
            q, c, x = (os.path.join(nd, n + s) for s in ('_qonnx.onnx', '_qcdq.onnx', '_x.npy'))
            if os.path.exists(x) and (os.path.exists(q) or os.path.exists(c)):
                out.append((n, q if os.path.exists(q) else None, c if os.path.exists(c) else None, x))
        if out:
            return out, root
    return out, None


def file_checks(path, label):
    m = onnx.load(path)
    try:
        onnx.checker.check_model(m, full_check=True)
        ok = True
    except Exception as e:  # noqa: BLE001 - the checker's own exception types vary by version
        print(f'{label}: checker: {e}')
        ok = False
    check(ok, f'{label}: onnx.checker accepts {path}')
    doms = {o.domain for o in m.opset_import}
    check(not any(d.startswith('qonnx') or d in ('onnx.brevitas', 'finn.custom_op.general') for d in doms),
          f'{label}: no qonnx opset import ({sorted(doms)})')
    check(all(n.domain in ('', 'ai.onnx') for n in m.graph.node), f'{label}: only default-domain nodes')
    check(not any(a.name.startswith('qopt_') for n in m.graph.node for a in n.attribute), f'{label}: no qopt_* attributes')
    ver = [o.version for o in m.opset_import if o.domain in ('', 'ai.onnx')]
    check(ver and ver[0] >= 13, f'{label}: opset >= 13 ({ver})')
    ops = {}
    for n in m.graph.node:
        ops[n.op_type] = ops.get(n.op_type, 0) + 1
    return ops


def replay_quantizers(a, W, tag, low, x):
    """Each activation chain QuantizeLinear -> [Clip] -> DequantizeLinear of `low`, fed the float tensor
    onnxruntime computed for it on x, alone in a model: qopt's JIT on that model (as it is, and imported
    to a Quant node) == onnxruntime's output of the chain in the full model. Isolates the quantizers from
    the float layers' summation order. Returns (chains, mismatching elements, elements)."""
    m = onnx.load(low)
    by_out = {o: n for n in m.graph.node for o in n.output}
    inits = {i.name: i for i in m.graph.initializer}
    chains = []
    for n in m.graph.node:
        if n.op_type != 'DequantizeLinear' or n.input[0] in inits:
            continue
        c = by_out.get(n.input[0])
        q = by_out.get(c.input[0]) if c is not None and c.op_type == 'Clip' else c
        if q is None or q.op_type != 'QuantizeLinear':
            continue
        chains.append([q] + ([c] if c is not q else []) + [n])
    pm = onnx.load(low)
    have = {o.name for o in pm.graph.output}
    names = []
    for ch in chains:
        for t in (ch[0].input[0], ch[-1].output[0]):
            if t not in have:
                pm.graph.output.append(onnx.helper.make_empty_tensor_value_info(t))
                have.add(t)
    outs = [o.name for o in pm.graph.output]
    onnx.save(pm, W(tag + '_replay_probes.onnx'))
    rc, log = sh(['node', os.path.join(HERE, 'ort_run.js'), W(tag + '_replay_probes.onnx'), x, mkdir(W(tag, 'replay_ort'))])
    if not check(rc == 0, f'{tag}: onnxruntime with the quantizer probes ({log.strip()[-300:]})'):
        return 0, 0, 0
    ortv = {nm: np.load(W(tag, 'replay_ort', f'out_{i}.npy')) for i, nm in enumerate(outs)}
    mism = total = 0
    for k, ch in enumerate(chains):
        xin, yout = ch[0].input[0], ch[-1].output[0]
        used = [i for n in ch for i in n.input if i in inits]
        g = onnx.helper.make_graph(
            ch, f'chain{k}', [onnx.helper.make_tensor_value_info(xin, onnx.TensorProto.FLOAT, list(ortv[xin].shape))],
            [onnx.helper.make_tensor_value_info(yout, onnx.TensorProto.FLOAT, list(ortv[yout].shape))],
            [inits[i] for i in dict.fromkeys(used)])
        tm = onnx.helper.make_model(g, opset_imports=list(m.opset_import))
        tm.ir_version = m.ir_version
        tp, xp = W(tag, f'chain{k}.onnx'), W(tag, f'chain{k}_x.npy')
        onnx.save(tm, tp)
        np.save(xp, ortv[xin])
        for mode, extra in (('qcdq', []), ('quant', ['--import'])):
            rc, log = sh([a.tool, 'run', tp, xp, mkdir(W(tag, f'chain{k}_{mode}'))] + extra)
            if not check(rc == 0, f'{tag}: JIT on chain {k} ({mode}) ({log.strip()[-200:]})'):
                continue
            y = np.load(W(tag, f'chain{k}_{mode}', 'out_0.npy'))
            d = int((bits(y) != bits(ortv[yout])).sum()) if mode == 'qcdq' else int((y != ortv[yout]).sum())
            mism += d
            total += y.size
            check(d == 0, f'{tag}: chain {k} ({ch[0].name}, {mode}) fed onnxruntime\'s input: {d} elements differ')
    return len(chains), mism, total


def quantize_cases(a, W):
    """qopt quantize (the lead's driver: insert-quant, calibrate, ... then lower-qcdq or QONNX) on
    digits_float.onnx at W8A8 / W4A4 / W2A2: onnxruntime on the QCDQ file == qopt's JIT on the QONNX file
    imported and lowered (bit for bit) and on its Quant form (values). Skipped when the inputs are missing."""
    dd = os.path.join(a.shared, 'digits')
    fl, calib, x = (os.path.join(dd, f) for f in ('digits_float.onnx', 'digits_train_x.npy', 'digits_test_x.npy'))
    if not all(os.path.exists(f) for f in (fl, calib, x, a.qopt)):
        print('qopt quantize cases skipped (no qopt or no digits_float.onnx)')
        return []
    rows = []
    for bw in (8, 4, 2):
        tag = f'quantize_W{bw}A{bw}'
        outs = {}
        for fmt in ('qcdq', 'qonnx'):
            outs[fmt] = W(f'{tag}_{fmt}.onnx')
            rc, log = sh([a.qopt, 'quantize', fl, '--calib', calib, '--format', fmt, '--quiet', '-o', outs[fmt],
                          '--weights', f'int8_weight_per_channel_float:bits={bw}', '--acts', f'int8_act_per_tensor_float:bits={bw}'])
            if not check(rc == 0, f'{tag}: qopt quantize --format {fmt} ({log.strip()[-300:]})'):
                return rows
        file_checks(outs['qcdq'], tag)
        rc1, l1 = sh([a.tool, 'run', outs['qonnx'], x, mkdir(W(tag, 'jl')), '--import', '--lower'])
        rc2, l2 = sh([a.tool, 'run', outs['qonnx'], x, mkdir(W(tag, 'jq')), '--import'])
        rc3, l3 = sh(['node', os.path.join(HERE, 'ort_run.js'), outs['qcdq'], x, W(tag + '_ort.npy')])
        rc4, l4 = sh(['node', os.path.join(HERE, 'ort_run.js'), outs['qcdq'], x, W(tag + '_ort_opt.npy'), '--opt'])
        if not check(rc1 == 0 and rc2 == 0 and rc3 == 0 and rc4 == 0, f'{tag}: runs ({(l1 + l2 + l3 + l4)[-400:]})'):
            continue
        o, oo = np.load(W(tag + '_ort.npy')), np.load(W(tag + '_ort_opt.npy'))
        jl, jq = np.load(W(tag, 'jl', 'out_0.npy')), np.load(W(tag, 'jq', 'out_0.npy'))
        m1, m2 = int((bits(jl) != bits(o)).sum()), int((jq != o).sum())
        check(m1 == 0, f'{tag}: qopt JIT (QONNX imported, lowered) vs onnxruntime on the QCDQ file: {m1} differ')
        check(m2 == 0, f'{tag}: qopt JIT (Quant form) vs onnxruntime on the QCDQ file: {m2} differ')
        rows.append({'tag': tag, 'n': int(o.size), 'jit_q_mism': m1, 'jit_q_elems': int(o.size), 'quantform_q_mism': m2,
                     'opt_mism': int((bits(oo) != bits(o)).sum()),
                     'opt_argmax': int((oo.argmax(1) != o.argmax(1)).sum())})
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--tool', required=True)
    ap.add_argument('--shared', default='')
    ap.add_argument('--data', default=os.path.join(HERE, '..', 'data', 'brevitas'))
    ap.add_argument('--work', required=True)
    ap.add_argument('--filter', default='')
    ap.add_argument('--qopt', default='', help='the qopt CLI: also check qopt quantize --format qcdq/qonnx')
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    models, root = locate(a.shared, a.data)
    models = [m for m in models if a.filter in m[0]]
    if not models:
        print('skipped: no Brevitas exports found')
        return 77
    print(f'models from {root}: {len(models)}')
    W = lambda *p: os.path.join(a.work, *p)  # noqa: E731
    jobs, plan, replay = [], [], {}

    def qouts(log):
        for line in log.splitlines():
            if line.startswith('quantized-outputs '):
                return [int(t) for t in line.split()[1].split(',') if t] if len(line.split()) > 1 else []
        return None

    # ---- qopt side: lower (plain and with probes), run the JIT ----
    for name, qonnx_p, qcdq_p, x in models:
        for kind, src in (('qonnx', qonnx_p), ('qcdq', qcdq_p)):
            if not src:
                continue
            tag = f'{name}_{kind}'
            low, lowp = W(tag + '_lowered.onnx'), W(tag + '_lowered_probes.onnx')
            for f in (low, lowp):
                if os.path.exists(f):
                    os.remove(f)
            rc, log = sh([a.tool, 'lower', src, low])
            if not check(rc == 0 and os.path.exists(low), f'{tag}: lower ({log.strip()})'):
                continue
            ops = file_checks(low, tag)
            rc, log = sh([a.tool, 'lower', src, lowp, '--probe'])
            check(rc == 0, f'{tag}: lower with probes ({log.strip()})')
            q_low = qouts(log)
            rc, log = sh([a.tool, 'run', src, x, mkdir(W(tag, 'jit_lowered')), '--import', '--lower', '--probe'])
            check(rc == 0 and qouts(log) == q_low, f'{tag}: JIT on the lowered IR ({log.strip()[-300:]})')
            rc, log = sh([a.tool, 'run', src, x, mkdir(W(tag, 'jit_quant')), '--import', '--probe'])
            check(rc == 0 and qouts(log) == q_low, f'{tag}: JIT on the Quant-form IR ({log.strip()[-300:]})')
            jobs += [{'model': lowp, 'x': x, 'out': W(tag, 'ort')},
                     {'model': low, 'x': x, 'out': W(tag, 'ort_plain')},
                     {'model': low, 'x': x, 'out': W(tag, 'ort_opt'), 'opt': True}]
            if kind == 'qcdq':
                origp = W(tag + '_orig_probes.onnx')
                rc, log = sh([a.tool, 'copy', src, origp, '--probe'])
                check(rc == 0 and qouts(log) == q_low, f'{tag}: probes on the original ({log.strip()[-300:]})')
                jobs.append({'model': origp, 'x': x, 'out': W(tag, 'orig')})
            plan.append((name, kind, tag, ops, q_low or []))
            if name in FLOAT_ORDER:
                nch, rm, rt = replay_quantizers(a, W, tag, low, x)
                replay[tag] = (nch, rm, rt)
    with open(W('jobs.json'), 'w') as f:
        json.dump(jobs, f)
    rc, log = sh(['node', os.path.join(HERE, 'ort_run.js'), '--jobs', W('jobs.json')])
    check(rc == 0, f'onnxruntime runs ({log.strip()[-500:]})')

    def outs(tag, what):
        d = W(tag, what)
        r = []
        while os.path.exists(os.path.join(d, f'out_{len(r)}.npy')):
            r.append(np.load(os.path.join(d, f'out_{len(r)}.npy')))
        return r

    def maxdiff(x, y):
        return float(np.abs(x.astype(np.float64) - y.astype(np.float64)).max()) if x.size else 0.0

    rows = []
    for name, kind, tag, ops, qidx in plan:
        ort, plain, opt, jl, jq = (outs(tag, w) for w in ('ort', 'ort_plain', 'ort_opt', 'jit_lowered', 'jit_quant'))
        if not check(len(ort) > 0 and len(plain) > 0, f'{tag}: onnxruntime outputs'):
            continue
        row = {'tag': tag, 'n': int(plain[0].size), 'ops': ops, 'quantized': len(qidx)}
        # 1b / contract: qopt's JIT on the lowered IR vs onnxruntime (optimizations off), every output
        if check(len(jl) == len(ort) and all(u.shape == v.shape for u, v in zip(jl, ort)), f'{tag}: JIT output shapes'):
            qm = sum(int((bits(jl[i]) != bits(ort[i])).sum()) for i in qidx)
            row['jit_q_mism'] = qm
            row['jit_q_elems'] = sum(int(ort[i].size) for i in qidx)
            if name in FLOAT_ORDER:
                # qopt's Conv (im2col + OpenBLAS) sums in another order than onnxruntime's MLAS: the float
                # input of a later quantizer can differ by an ulp and land on the other side of a tie.
                # The first quantizers (before any such Conv) must still be exact; the rest is reported.
                first = qidx[:FLOAT_ORDER[name]]
                q0 = sum(int((bits(jl[i]) != bits(ort[i])).sum()) for i in first)
                check(q0 == 0, f'{tag}: JIT vs onnxruntime, first {len(first)} quantized tensors: {q0} differ')
                check(qm <= row['jit_q_elems'] // 1000, f'{tag}: JIT vs onnxruntime: {qm} quantized elements differ (> 0.1 %)')
            else:
                check(qm == 0, f'{tag}: qopt JIT on the lowered IR vs onnxruntime: {qm} quantized elements differ')
            fl = [i for i in range(len(ort)) if i not in qidx]
            row['jit_float_mism'] = sum(int((bits(jl[i]) != bits(ort[i])).sum()) for i in fl)
            row['jit_float_maxdiff'] = max([maxdiff(jl[i], ort[i]) for i in fl] or [0])
        if len(jq) == len(ort) and all(u.shape == v.shape for u, v in zip(jq, ort)):
            qm = sum(int((jq[i] != ort[i]).sum()) for i in qidx)  # value equality: -0 == +0
            row['quantform_q_mism'] = qm
            jm = sum(int((jq[i] != jl[i]).sum()) for i in qidx) if len(jl) == len(jq) else -1
            row['quantform_vs_lowered'] = jm
            check(jm == 0, f'{tag}: qopt JIT, Quant-form IR vs lowered IR: {jm} quantized elements differ')
            check(qm == 0 or name in FLOAT_ORDER, f'{tag}: qopt JIT on the Quant-form IR vs onnxruntime on our QCDQ: {qm} quantized differ')
        if opt:
            row['opt_mism'] = int((bits(opt[0]) != bits(plain[0])).sum())
            row['opt_argmax'] = int((opt[0].reshape(opt[0].shape[0], -1).argmax(1) !=
                                     plain[0].reshape(plain[0].shape[0], -1).argmax(1)).sum())
        if kind == 'qcdq':
            orig = outs(tag, 'orig')
            if check(len(orig) == len(ort), f'{tag}: onnxruntime on the original'):
                mism = sum(int((bits(o) != bits(r)).sum()) for o, r in zip(orig, ort))
                row['roundtrip_mism'] = mism
                check(mism == 0, f'{tag}: onnxruntime on our QCDQ vs on Brevitas\'s QCDQ, all outputs: {mism} differ')
                if len(jq) == len(orig):
                    mq = sum(int((jq[i] != orig[i]).sum()) for i in qidx)
                    row['import_vs_orig'] = mq
                    check(mq == 0 or name in FLOAT_ORDER, f'{tag}: qopt JIT on the imported IR vs onnxruntime on the original: {mq} differ')
        else:
            brev = outs(f'{name}_qcdq', 'ort_plain')
            if brev and brev[0].shape == plain[0].shape:
                b, o = brev[0], plain[0]
                row['vs_brevitas_qcdq'] = int((bits(b) != bits(o)).sum())
                row['vs_brevitas_argmax'] = int((b.reshape(b.shape[0], -1).argmax(1) != o.reshape(o.shape[0], -1).argmax(1)).sum())
        if tag in replay:
            row['replay'] = replay[tag]
        rows.append(row)
    if a.qopt:
        rows += quantize_cases(a, W)
    with open(W('summary.json'), 'w') as f:
        json.dump(rows, f, indent=1)
    print('\nmodel | outputs | quantized tensors: JIT vs ORT mismatches / elements | Quant-form vs ORT | '
          'float outputs: JIT vs ORT mismatches (max abs diff) | ORT opt on vs off (argmax) | vs Brevitas QCDQ (argmax) | round trip')
    for r in rows:
        print(f"{r['tag']} | {r['n']} | {r.get('jit_q_mism', '-')} / {r.get('jit_q_elems', '-')} | "
              f"{r.get('quantform_q_mism', '-')} | {r.get('jit_float_mism', '-')} ({r.get('jit_float_maxdiff', 0):.3g}) | "
              f"{r.get('opt_mism', '-')} ({r.get('opt_argmax', '-')}) | "
              f"{r.get('vs_brevitas_qcdq', '-')} ({r.get('vs_brevitas_argmax', '-')}) | {r.get('roundtrip_mism', '-')}")
    for r in rows:
        if 'replay' in r:
            print(f"{r['tag']}: {r['replay'][0]} activation quantizers replayed alone on onnxruntime's inputs "
                  f"(QCDQ and Quant form): {r['replay'][1]} of {r['replay'][2]} elements differ")
    tot = sum(r['n'] for r in rows if 'opt_mism' in r and r['tag'].startswith('digits') and r['tag'].endswith('_qcdq'))
    mis = sum(r['opt_mism'] for r in rows if 'opt_mism' in r and r['tag'].startswith('digits') and r['tag'].endswith('_qcdq'))
    if tot:
        print(f'ORT optimizations on vs off, our digits files (one per Brevitas model): {mis} of {tot} logits differ '
              f'({100.0 * mis / tot:.3f} %)')
    tot = sum(r['n'] for r in rows if 'vs_brevitas_qcdq' in r)
    mis = sum(r['vs_brevitas_qcdq'] for r in rows if 'vs_brevitas_qcdq' in r)
    if tot:
        print(f'ours (from QONNX) vs Brevitas QCDQ in onnxruntime: {tot - mis} of {tot} outputs bit-identical '
              f'({100.0 * (tot - mis) / tot:.3f} %)')
    print(f'{passed} passed, {failed} failed')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
