#!/usr/bin/python3
"""tests/quantize/e2e.py — `qopt quantize` end to end on Brevitas's digits network, against oracles
qopt did not write:

  * python3-onnx's checker accepts every written file;
  * the exactness contract: onnxruntime (graph optimizations disabled) on the written QCDQ file and
    qopt's own execution (`qopt run`, LLVM JIT) of the same file give bit-identical logits on the
    450 test images, and so does qopt's execution of the quantized IR before lowering (the
    `--format qonnx` file: Quant nodes, Brevitas's fake-quant semantics) — all quantizers have zero
    point 0 here, where the two forms are the same function;
  * Brevitas's PTQ exports (tests/data/brevitas/digits, recipe in PEERS_README.md): integer weights
    and weight scales equal (exact), activation scales equal (exact, or within 4 ulp where our
    float convolutions sum in another order than PyTorch's), test accuracy at least Brevitas's;
  * the same file through onnxruntime with all graph optimizations: the mismatch rate is printed
    (docs/PERFORMANCE.md), not asserted.

Usage: e2e.py QOPT DATADIR ORTDIR [CONFIG ...]   (CONFIG like uniform_W4A4; default: all nine)
Prints one line per check and "N passed, N failed"."""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import numpy_helper

qopt, data, ortdir = (os.path.abspath(a) for a in sys.argv[1:4])
configs = sys.argv[4:] or [f"{c}_W{b}A{b}" for c in ("uniform", "io8", "fl8") for b in (8, 4, 2)]
ort_run = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ort_run.js")
passed = failed = 0


def check(ok, what):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
    print(("ok   " if ok else "FAIL ") + what, flush=True)


def ulps(a, b):
    a = np.asarray(a, np.float32).view(np.int32).astype(np.int64)
    b = np.asarray(b, np.float32).view(np.int32).astype(np.int64)
    return np.abs(a - b)


def inits(m):
    return {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}


def producer(m):
    return {o: n for n in m.graph.node for o in n.output}


def weight_codes(m):
    """(codes, scale) of each Conv/Gemm weight in node order: initializer -> [Clip] -> DequantizeLinear."""
    ini, prod, out = inits(m), producer(m), []
    for n in m.graph.node:
        if n.op_type not in ("Conv", "Gemm"):
            continue
        dq = prod.get(n.input[1])
        if dq is None or dq.op_type != "DequantizeLinear":
            out.append(None)
            continue
        src = dq.input[0]
        if src in prod and prod[src].op_type == "Clip":
            src = prod[src].input[0]
        out.append((ini.get(src), ini.get(dq.input[1])))
    return out


def bias_codes(m):
    ini, prod, out = inits(m), producer(m), []
    for n in m.graph.node:
        if n.op_type in ("Conv", "Gemm") and len(n.input) > 2:
            dq = prod.get(n.input[2])
            out.append(ini.get(dq.input[0]) if dq is not None and dq.op_type == "DequantizeLinear" else None)
    return out


def act_scales(m):
    ini = inits(m)
    return [float(ini[n.input[1]]) for n in m.graph.node if n.op_type == "QuantizeLinear"]


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


res = json.load(open(os.path.join(data, "results.json")))
tx = os.path.join(data, "digits_test_x.npy")
ty = np.load(os.path.join(data, "digits_test_y.npy"))
tmp = tempfile.mkdtemp(prefix="qopt-e2e-")
opt_mismatch = []
for cfg in configs:
    kind, wa = cfg.split("_")
    bits = int(wa[1])
    args = [qopt, "quantize", os.path.join(data, "digits_float.onnx"), "--calib",
            os.path.join(data, "digits_train_x.npy"), "--batch", "64", "--threads", "2",
            "--weights", f"int8_weight_per_channel_float:bits={bits},narrow=0",
            "--acts", f"int8_act_per_tensor_float:bits={bits}", "--quiet"]
    if kind in ("io8", "fl8"):
        args += ["--set", "io_bits=8"]
    if kind == "fl8":
        args += ["--set", "keep_first_last_8bit=1"]
    out = os.path.join(tmp, cfg + ".onnx")
    outq = os.path.join(tmp, cfg + "_qonnx.onnx")
    rep = os.path.join(tmp, cfg + ".json")
    p = run(args + ["-o", out, "--report", rep])
    check(p.returncode == 0 and os.path.exists(out), f"{cfg}: qopt quantize exits 0 ({p.stderr.strip()[-300:]})")
    if p.returncode:
        continue
    p2 = run(args + ["-o", outq, "--format", "qonnx"])
    check(p2.returncode == 0, f"{cfg}: --format qonnx ({p2.stderr.strip()[-300:]})")
    m = onnx.load(out)
    try:
        onnx.checker.check_model(m, full_check=True)
        check(True, f"{cfg}: onnx.checker accepts the QCDQ file")
    except Exception as e:  # noqa: BLE001
        check(False, f"{cfg}: onnx.checker: {e}")
    r = json.load(open(rep))
    check(len(r["layers"]) >= 5 and all("sqnr_db" in l for l in r["layers"]), f"{cfg}: report has the layer table")

    # exactness contract
    o_ort = os.path.join(tmp, cfg + "_ort.npy")
    p = run(["node", ort_run, out, tx, o_ort], cwd=ortdir)
    check(p.returncode == 0, f"{cfg}: onnxruntime runs the QCDQ file ({p.stderr.strip()[-200:]})")
    d_q = os.path.join(tmp, cfg + "_qopt")
    p = run([qopt, "run", out, "--input", tx, "--output-dir", d_q, "--threads", "2"])
    check(p.returncode == 0, f"{cfg}: qopt run on the QCDQ file ({p.stderr.strip()[-200:]})")
    d_s = os.path.join(tmp, cfg + "_sim")
    p = run([qopt, "run", outq, "--input", tx, "--output-dir", d_s, "--threads", "2"])
    check(p.returncode == 0, f"{cfg}: qopt run on the quantized IR (QONNX) ({p.stderr.strip()[-200:]})")
    if not os.path.exists(o_ort) or not os.path.isdir(d_q) or not os.path.isdir(d_s):
        continue
    a = np.load(o_ort)
    b = np.load(os.path.join(d_q, os.listdir(d_q)[0]))
    c = np.load(os.path.join(d_s, os.listdir(d_s)[0]))
    check(a.shape == b.shape and np.array_equal(a.view(np.int32), b.view(np.int32)),
          f"{cfg}: onnxruntime == qopt on the QCDQ file, bit for bit ({int(np.sum(a != b))} differ)")
    check(a.shape == c.shape and np.array_equal(a, c),
          f"{cfg}: onnxruntime on QCDQ == qopt's quantized IR ({int(np.sum(a != c))} differ)")
    o_opt = os.path.join(tmp, cfg + "_ortopt.npy")
    if run(["node", ort_run, out, tx, o_opt, "--opt", "all"], cwd=ortdir).returncode == 0:
        e = np.load(o_opt)
        opt_mismatch.append((cfg, int(np.sum(e != a)), a.size, int(np.sum(e.argmax(1) != a.argmax(1)))))

    # Brevitas
    bm = onnx.load(os.path.join(data, f"digits_ptq_{cfg}_qcdq.onnx"))
    ours, theirs = weight_codes(m), weight_codes(bm)
    same_w = len(ours) == len(theirs) and all(
        o is not None and t is not None and o[0].shape == t[0].shape and np.array_equal(o[0].astype(np.int64), t[0].astype(np.int64))
        for o, t in zip(ours, theirs))
    check(same_w, f"{cfg}: integer weights == Brevitas's ({len(ours)} layers)")
    same_s = len(ours) == len(theirs) and all(
        o is not None and t is not None and np.array_equal(np.asarray(o[1], np.float32).ravel(), np.asarray(t[1], np.float32).ravel())
        for o, t in zip(ours, theirs))
    check(same_s, f"{cfg}: weight scales == Brevitas's")
    sa, sb = act_scales(m), act_scales(bm)
    if len(sa) == len(sb):
        u = ulps(sa, sb)
        check(int(u.max()) <= 4, f"{cfg}: activation scales == Brevitas's: {int(np.sum(u == 0))}/{len(u)} exact, max {int(u.max())} ulp")
    else:
        check(False, f"{cfg}: {len(sa)} activation quantizers, Brevitas has {len(sb)}")
    ob, tb = bias_codes(m), bias_codes(bm)
    nb = sum(1 for o, t in zip(ob, tb) if o is not None and t is not None and np.array_equal(o, t))
    nclose = sum(1 for o, t in zip(ob, tb) if o is not None and t is not None and o.shape == t.shape
                 and int(np.max(np.abs(o.astype(np.int64) - t.astype(np.int64)))) <= 2)
    print(f"info {cfg}: int32 biases equal to Brevitas's: {nb}/{len(tb)} layers exactly, {nclose}/{len(tb)} within 2 codes")
    acc = float(np.mean(a.argmax(1) == ty))
    bacc = res["ptq"][cfg]["acc_ptq_calib_biascorr"]
    check(acc >= bacc - 1e-6, f"{cfg}: test accuracy {100 * acc:.2f}% >= Brevitas's {100 * bacc:.2f}%")

# data-free: no --calib -> warnings that say so, a valid file, still bit-exact with onnxruntime
out = os.path.join(tmp, "datafree.onnx")
p = run([qopt, "quantize", os.path.join(data, "digits_float.onnx"), "-o", out, "--quiet"])
check(p.returncode == 0 and "no calibration data" in p.stderr, "data-free: exits 0 and warns that ranges are not from data")
if p.returncode == 0:
    o_ort = os.path.join(tmp, "datafree_ort.npy")
    d_q = os.path.join(tmp, "datafree_qopt")
    run(["node", ort_run, out, tx, o_ort], cwd=ortdir)
    run([qopt, "run", out, "--input", tx, "--output-dir", d_q])
    if os.path.exists(o_ort) and os.path.isdir(d_q):
        a, b = np.load(o_ort), np.load(os.path.join(d_q, os.listdir(d_q)[0]))
        check(np.array_equal(a, b), "data-free: onnxruntime == qopt bit for bit")
        print(f"info data-free W8A8 test accuracy {100 * np.mean(a.argmax(1) == ty):.2f}%")
    else:
        check(False, "data-free: outputs missing")

for cfg, n, tot, arg in opt_mismatch:
    print(f"info onnxruntime optimizations on vs off, {cfg}: {n}/{tot} logits differ, {arg} argmax changes")
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
