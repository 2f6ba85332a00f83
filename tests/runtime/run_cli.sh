#!/bin/sh
# tests/runtime/run_cli.sh — `qopt run` from the outside.
#
#   run_cli.sh QOPT SRCDIR PYTHON [NODE]
#
# Small models built here with python3-onnx check the command line: outputs written as
# DIR/<sanitized name>.npy (values checked with numpy), DIR created, the single-input FILE form,
# --repeat/--threads, and every user error (unknown/missing/duplicate input, wrong shape or dtype,
# unreadable or missing .npy, unsupported ops) giving exit status 1 and a message naming the input or
# file. Then every tests/models/*.onnx with a .in/ directory runs with qopt and with onnxruntime
# (NODE tests/ort/run.js): outputs must agree within max|a-b| <= 1e-4 * max|b| per output (exact for
# integer outputs); a model whose ops lack kernels must say so (listing them) and is skipped.
# Prints "N passed, N failed".
set -u
QOPT=$1 SRC=$2 PY=$3 NODE=${4:-}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }

# expect_err "WORDS|WORDS" qopt-args...: exit status 1 and every |-separated word in stderr
expect_err() {
    words=$1
    shift
    "$QOPT" "$@" >"$T/out" 2>"$T/err"
    rc=$?
    if [ $rc -ne 1 ]; then
        bad "qopt $*: exit status $rc, expected 1 ($(cat "$T/err"))"
        return
    fi
    old_ifs=$IFS
    IFS='|'
    for w in $words; do
        if ! grep -qF -- "$w" "$T/err"; then
            IFS=$old_ifs
            bad "qopt $*: message lacks '$w': $(cat "$T/err")"
            return
        fi
    done
    IFS=$old_ifs
    ok
}

# ---- fixtures ---------------------------------------------------------------------------------
"$PY" - "$T" <<'EOF' || { echo "FAIL: cannot build fixtures"; echo "0 passed, 1 failed"; exit 1; }
import sys, numpy as np, onnx
from onnx import helper as h, TensorProto as TP
t = sys.argv[1]
g = h.make_graph(
    [h.make_node("Add", ["x", "y"], ["out/put:0"]), h.make_node("Relu", ["out/put:0"], ["r"])], "two",
    [h.make_tensor_value_info("x", TP.FLOAT, [2, 3]), h.make_tensor_value_info("y", TP.FLOAT, [2, 3])],
    [h.make_tensor_value_info("out/put:0", TP.FLOAT, [2, 3]), h.make_tensor_value_info("r", TP.FLOAT, [2, 3])])
onnx.save(h.make_model(g, opset_imports=[h.make_opsetid("", 13)]), t + "/two.onnx")
g = h.make_graph([h.make_node("Neg", ["x"], ["y"])], "one",
                 [h.make_tensor_value_info("x", TP.FLOAT, ["N", 2])], [h.make_tensor_value_info("y", TP.FLOAT, ["N", 2])])
onnx.save(h.make_model(g, opset_imports=[h.make_opsetid("", 13)]), t + "/one.onnx")
g = h.make_graph([h.make_node("Neg", ["x"], ["a"]), h.make_node("Frob", ["a"], ["b"], domain="acme", name="frob1"),
                  h.make_node("Frob", ["b"], ["y"], domain="acme", name="frob2")], "unsup",
                 [h.make_tensor_value_info("x", TP.FLOAT, [2])], [h.make_tensor_value_info("y", TP.FLOAT, [2])])
onnx.save(h.make_model(g, opset_imports=[h.make_opsetid("", 13), h.make_opsetid("acme", 1)]), t + "/unsup.onnx")
# Scan: state s += slice of X along axis 1 read in reverse; scan output stacked along axis 1 in reverse
body = h.make_graph([h.make_node("Add", ["s", "xs"], ["s2"]), h.make_node("Identity", ["s2"], ["ys"])], "body",
                    [h.make_tensor_value_info("s", TP.FLOAT, [2]), h.make_tensor_value_info("xs", TP.FLOAT, [2])],
                    [h.make_tensor_value_info("s2", TP.FLOAT, [2]), h.make_tensor_value_info("ys", TP.FLOAT, [2])])
g = h.make_graph([h.make_node("Scan", ["s0", "X"], ["sN", "Y"], body=body, num_scan_inputs=1, scan_input_axes=[1],
                              scan_input_directions=[1], scan_output_axes=[-1], scan_output_directions=[1])], "scan",
                 [h.make_tensor_value_info("s0", TP.FLOAT, [2]), h.make_tensor_value_info("X", TP.FLOAT, [2, 3])],
                 [h.make_tensor_value_info("sN", TP.FLOAT, [2]), h.make_tensor_value_info("Y", TP.FLOAT, [2, 3])])
onnx.save(h.make_model(g, opset_imports=[h.make_opsetid("", 16)]), t + "/scan.onnx")
np.save(t + "/s0.npy", np.array([1, 2], np.float32))
np.save(t + "/X.npy", np.arange(6, dtype=np.float32).reshape(2, 3))
rng = np.random.default_rng(1)
np.save(t + "/x.npy", rng.normal(size=(2, 3)).astype(np.float32))
np.save(t + "/y.npy", rng.normal(size=(2, 3)).astype(np.float32))
np.save(t + "/y_shape.npy", np.zeros((3, 2), np.float32))
np.save(t + "/y_rank.npy", np.zeros((6,), np.float32))
np.save(t + "/y_int.npy", np.zeros((2, 3), np.int64))
np.save(t + "/x5.npy", rng.normal(size=(5, 2)).astype(np.float32))
np.save(t + "/x2.npy", np.ones((2,), np.float32))
open(t + "/garbage.npy", "wb").write(b"this is not an npy file")
EOF

# ---- help ---------------------------------------------------------------------------------------
if "$QOPT" run --help | grep -q "usage: qopt run MODEL"; then ok; else bad "run --help"; fi
if "$QOPT" --help | grep -q "  run MODEL"; then ok; else bad "main usage lists run"; fi

# ---- good runs ----------------------------------------------------------------------------------
D="$T/deep/er/out"
if "$QOPT" run "$T/two.onnx" --input "x=$T/x.npy" --input "y=$T/y.npy" --output-dir "$D" >"$T/out" 2>"$T/err"; then
    ok
    if "$PY" -c "
import numpy as np, sys
t = sys.argv[1]; x = np.load(t + '/x.npy'); y = np.load(t + '/y.npy')
a = np.load(sys.argv[2] + '/out_put_0.npy'); r = np.load(sys.argv[2] + '/r.npy')
assert a.dtype == np.float32 and a.shape == (2, 3) and (a == x + y).all(), a
assert (r == np.maximum(x + y, 0)).all(), r
" "$T" "$D"; then ok; else bad "two-input outputs differ from numpy"; fi
else
    bad "two-input run: $(cat "$T/err")"
fi
if "$QOPT" run "$T/one.onnx" --input "$T/x5.npy" -o "$T/o1" --threads 2 >"$T/out" 2>"$T/err" &&
    "$PY" -c "
import numpy as np, sys
assert (np.load(sys.argv[1] + '/o1/y.npy') == -np.load(sys.argv[1] + '/x5.npy')).all()" "$T"; then
    ok
else
    bad "single-input FILE form with a symbolic dim: $(cat "$T/err")"
fi
if "$QOPT" run "$T/one.onnx" --input "x=$T/x5.npy" --output-dir "$T/o2" --repeat 3 >"$T/out" 2>"$T/err" &&
    grep -q "latency: median .* ms over 3 runs" "$T/out"; then ok; else bad "--repeat: $(cat "$T/out" "$T/err")"; fi

if "$QOPT" run "$T/scan.onnx" --input "s0=$T/s0.npy" --input "X=$T/X.npy" -o "$T/sc" >"$T/out" 2>"$T/err" &&
    "$PY" -c "
import numpy as np, sys
d = sys.argv[1]; s = np.load(d + '/s0.npy'); X = np.load(d + '/X.npy'); Y = np.zeros_like(X)
for t in range(3):
    s = s + X[:, 2 - t]; Y[:, 2 - t] = s
assert (np.load(d + '/sc/sN.npy') == s).all() and (np.load(d + '/sc/Y.npy') == Y).all(), np.load(d + '/sc/Y.npy')
" "$T"; then ok; else bad "Scan (axes, reverse directions): $(cat "$T/err")"; fi

# ---- user errors --------------------------------------------------------------------------------
expect_err "unknown input 'z'|'x'|'y'" run "$T/two.onnx" --input "z=$T/x.npy" --input "y=$T/y.npy" --output-dir "$T/e"
expect_err "missing input 'y'" run "$T/two.onnx" --input "x=$T/x.npy" --output-dir "$T/e"
expect_err "input 'y'|shape mismatch|f32[2,3]|f32[3,2]|y_shape.npy" run "$T/two.onnx" --input "x=$T/x.npy" --input "y=$T/y_shape.npy" --output-dir "$T/e"
expect_err "input 'y'|rank|y_rank.npy" run "$T/two.onnx" --input "x=$T/x.npy" --input "y=$T/y_rank.npy" --output-dir "$T/e"
expect_err "input 'y'|element type|i64[2,3]|y_int.npy" run "$T/two.onnx" --input "x=$T/x.npy" --input "y=$T/y_int.npy" --output-dir "$T/e"
expect_err "garbage.npy|not a .npy file" run "$T/two.onnx" --input "x=$T/x.npy" --input "y=$T/garbage.npy" --output-dir "$T/e"
expect_err "$T/nope.npy" run "$T/two.onnx" --input "x=$T/x.npy" --input "y=$T/nope.npy" --output-dir "$T/e"
expect_err "NAME=|'x', 'y'" run "$T/two.onnx" --input "$T/x.npy" --output-dir "$T/e"
expect_err "given twice" run "$T/one.onnx" --input "x=$T/x5.npy" --input "$T/x5.npy" --output-dir "$T/e"
expect_err "output-dir" run "$T/one.onnx" --input "$T/x5.npy"
expect_err "--threads" run "$T/one.onnx" --input "$T/x5.npy" --output-dir "$T/e" --threads 0
expect_err "--repeat" run "$T/one.onnx" --input "$T/x5.npy" --output-dir "$T/e" --repeat x
expect_err "no kernel|acme.Frob (2 nodes: 'frob1', 'frob2')" run "$T/unsup.onnx" --input "$T/x2.npy" --output-dir "$T/e"
expect_err "$T/missing.onnx" run "$T/missing.onnx" --input "$T/x2.npy" --output-dir "$T/e"
if [ -e "$T/e" ] && [ -n "$(ls "$T/e")" ]; then bad "failed runs left files in $T/e"; else ok; fi

# ---- models vs onnxruntime -----------------------------------------------------------------------
ORT_OK=
if [ -n "$NODE" ] && [ -d "$SRC/tests/ort/node_modules/onnxruntime-node" ]; then ORT_OK=1; fi
for m in "$SRC"/tests/models/*.onnx; do
    base=${m%.onnx}
    name=$(basename "$base")
    [ -d "$base.in" ] || continue
    args=
    for f in "$base.in"/*.npy; do args="$args --input $(basename "$f" .npy)=$f"; done
    # shellcheck disable=SC2086
    if ! "$QOPT" run "$m" $args --output-dir "$T/q_$name" >"$T/out" 2>"$T/err"; then
        if grep -q "no kernel for" "$T/err"; then
            echo "SKIP $name: $(cat "$T/err")"
        else
            bad "$name: qopt run failed: $(cat "$T/err")"
        fi
        continue
    fi
    if [ -z "$ORT_OK" ]; then
        echo "SKIP $name vs onnxruntime: node or tests/ort/node_modules missing"
        continue
    fi
    # shellcheck disable=SC2086
    if ! "$NODE" "$SRC/tests/ort/run.js" "$m" $args --out-dir "$T/o_$name" >/dev/null 2>"$T/err"; then
        echo "SKIP $name: onnxruntime failed: $(head -c 300 "$T/err")"
        continue
    fi
    if "$PY" - "$T/q_$name" "$T/o_$name" "$name" <<'EOF'; then ok; else bad "$name differs from onnxruntime"; fi
import glob, os, sys
import numpy as np
q, o, name = sys.argv[1:4]
outs = sorted(glob.glob(o + "/*.npy"))
good = bool(outs)
for f in outs:
    b = np.load(f)
    p = os.path.join(q, os.path.basename(f))
    if not os.path.exists(p):
        print(name, "missing output", os.path.basename(f)); good = False; continue
    a = np.load(p)
    if a.shape != b.shape or a.dtype != b.dtype:
        print(name, os.path.basename(f), "got", a.dtype, a.shape, "expected", b.dtype, b.shape); good = False; continue
    if a.dtype.kind == "f":
        scale = float(np.abs(b.astype(np.float64)).max()) if b.size else 0.0
        err = float(np.abs(a.astype(np.float64) - b).max()) if b.size else 0.0
        if not err <= 1e-4 * scale:
            print(name, os.path.basename(f), "max |diff| %g > 1e-4 * max |ref| %g" % (err, scale)); good = False
    elif not np.array_equal(a, b):
        print(name, os.path.basename(f), "integer outputs differ"); good = False
sys.exit(0 if good else 1)
EOF
done

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
