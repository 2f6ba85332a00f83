#!/usr/bin/env bash
# tests/passes/upgrade_opset.sh — `upgrade-opset` against onnxruntime: every model below opset 13 among
# tests/models, libonnx-testdata's pytorch-converted and pytorch-operator sets, and the node tests of
# every op whose signature changed before 13 (Softmax family, TopK, Resize/Upsample, Clip, Split,
# Squeeze/Unsqueeze, Slice, ReduceSum, Scatter, Dropout) is upgraded to
# opset 13, and onnxruntime must give bit-identical outputs on the original and the upgraded file
# (tests/ort/compare.js; models onnxruntime cannot load, or cannot run, in their original form are
# skipped and counted). Usage: upgrade_opset.sh QOPT DATA_DIR. Prints "N passed, N failed".
set -u
q=$1; data=$2
here=$(cd "$(dirname "$0")/.." && pwd)
t=$(mktemp -d); trap 'rm -rf "$t"' EXIT
pass=0; fail=0; skip=0
# every model whose default-domain opset is 7..12 (one python run lists them)
models=$(/usr/bin/python3 - "$here/models" "$data" <<'PY'
import glob, onnx, os, sys
here, data = sys.argv[1:3]
fs = sorted(glob.glob(f"{here}/*.onnx")) + sorted(glob.glob(f"{data}/pytorch-converted/*/model.onnx")) + \
     sorted(glob.glob(f"{data}/pytorch-operator/*/model.onnx")) + sorted(glob.glob(f"{data}/node/*/model.onnx"))
for f in fs:
    try:
        m = onnx.load(f, load_external_data=False)
    except Exception:
        continue
    op = max([o.version for o in m.opset_import if o.domain in ("", "ai.onnx")] or [0])
    if 7 <= op < 13:
        print(f)
PY
)
for f in $models; do
  if ! "$q" opt "$f" -p 'upgrade-opset' -o "$t/up.onnx" >"$t/log" 2>&1; then
    if grep -q "is not upgraded" "$t/log"; then skip=$((skip+1)); continue; fi
    fail=$((fail+1)); echo "FAIL $f: $(grep -v note "$t/log" | tail -2)"; continue
  fi
  r=$(node "$here/ort/compare.js" "$f" "$t/up.onnx" 2>&1); rc=$?
  if [ $rc = 0 ]; then pass=$((pass+1))
  elif echo "$r" | grep -q "not a TensorProto"; then skip=$((skip+1))   # sequence inputs
  elif [ $rc = 4 ] || [ $rc = 3 ] || [ $rc = 2 ]; then skip=$((skip+1))   # onnxruntime could not run the original, or
                                                          # compare.js cannot feed its inputs (sequences)
  else fail=$((fail+1)); echo "FAIL $f: $(echo "$r" | head -3)"; fi
done
echo "upgrade-opset: $pass models bit-identical in onnxruntime, $skip skipped (not loadable/runnable by onnxruntime)"
echo "$pass passed, $fail failed"
[ $fail = 0 ]
