#!/bin/sh
# tests/jit/models.sh RUNNER SRCROOT — every tests/models/<name>.onnx with a <name>.in/ directory:
# onnxruntime (tests/ort/run.js) writes the reference outputs, RUNNER (jit_run_models) compiles the
# model with the JIT and compares (normwise relative error <= 1e-5); if_op13 and loop_op13 cover
# If/Loop (bodies run by the interpreter, reading captured JIT buffers). Models the JIT cannot
# compile (exit 77) are skipped. Prints "N passed, N failed".
runner=$1
root=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0
fail=0
skip=0
for model in "$root"/tests/models/*.onnx; do
  name=$(basename "$model" .onnx)
  indir="$root/tests/models/$name.in"
  [ -d "$indir" ] || continue
  out="$tmp/$name"
  mkdir -p "$out"
  if ! node "$root/tests/ort/run.js" "$model" --npy-dir "$indir" --out-dir "$out" >/dev/null 2>"$out.err"; then
    echo "SKIP $name: onnxruntime failed: $(head -c 300 "$out.err")"
    skip=$((skip + 1))
    continue
  fi
  "$runner" "$model" "$indir" "$out"
  rc=$?
  if [ $rc -eq 0 ]; then pass=$((pass + 1))
  elif [ $rc -eq 77 ]; then skip=$((skip + 1))
  else echo "FAIL $name"; fail=$((fail + 1)); fi
done
echo "$skip skipped (onnxruntime failed or the JIT cannot compile them)"
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
