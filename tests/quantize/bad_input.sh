#!/usr/bin/env bash
# tests/quantize/bad_input.sh — `qopt quantize` on bad input: each case must exit non-zero, print a
# message naming the culprit (checked by pattern), and leave no output file (not even a partial one).
# Usage: bad_input.sh QOPT DIGITS_DIR. Prints "N passed, N failed".
set -u
qopt=$1; d=$2
t=$(mktemp -d); trap 'rm -rf "$t"' EXIT
pass=0; fail=0
m=$d/digits_float.onnx; x=$d/digits_train_x.npy
/usr/bin/python3 - "$t" "$x" <<'PY'
import numpy as np, sys
t, x = sys.argv[1], np.load(sys.argv[2])
np.save(f"{t}/wrongshape.npy", np.zeros((4, 3, 8, 8), np.float32))
np.save(f"{t}/wrongdtype.npy", x[:8].astype(np.int64))
np.save(f"{t}/wrongrank.npy", x[:8, 0])
open(f"{t}/garbage.npy", "wb").write(b"not a numpy file at all")
open(f"{t}/badkey.json", "w").write('{\n  "weights": "int8_weight_per_channel_float",\n  "wieghts_typo": 1\n}\n')
open(f"{t}/badjson.json", "w").write('{\n  "weights": \n')
open(f"{t}/badpreset.json", "w").write('{"acts": "int9_act_per_tensor_float"}\n')
PY
expect() { # expect NAME PATTERN ARGS...
  local name=$1 pat=$2; shift 2
  rm -f "$t/out.onnx" "$t/out.json"
  "$qopt" quantize "$@" -o "$t/out.onnx" --report "$t/out.json" --quiet >"$t/log" 2>&1
  local rc=$?
  local left; left=$(ls "$t" | grep -E '^out\.|\.tmp' || true)
  if [ $rc -ne 0 ] && grep -qiE -- "$pat" "$t/log" && [ -z "$left" ]; then
    pass=$((pass+1))
  else
    fail=$((fail+1)); echo "FAIL $name (exit $rc, files: $left)"; sed 's/^/    /' "$t/log"
  fi
}
expect bits-out-of-range  "bits.*40|40.*bits"           "$m" --calib "$x" --weights int8_weight_per_channel_float:bits=40
expect act-bits-zero      "bits"                        "$m" --calib "$x" --acts int8_act_per_tensor_float:bits=0
expect unknown-preset     "int9_weight|unknown preset"  "$m" --calib "$x" --weights int9_weight
expect unknown-spec-key   "colour"                      "$m" --calib "$x" --weights int8_weight_per_channel_float:colour=red
expect axis-missing       "axis"                        "$m" --calib "$x" --weights int8_weight_per_channel_float:axis=6
expect config-unknown-key "wieghts_typo"                "$m" --calib "$x" --config "$t/badkey.json"
expect config-bad-json    "badjson.json"                "$m" --calib "$x" --config "$t/badjson.json"
expect config-bad-preset  "int9_act_per_tensor_float"   "$m" --calib "$x" --config "$t/badpreset.json"
expect config-missing     "nope.json"                   "$m" --calib "$x" --config "$t/nope.json"
expect set-unknown-key    "no_such_key"                 "$m" --calib "$x" --set no_such_key=1
expect calib-wrong-shape  "input.*(1, *8, *8|8x8)|shape" "$m" --calib "$t/wrongshape.npy"
expect calib-wrong-dtype  "expected f32.*got i64"       "$m" --calib "$t/wrongdtype.npy"
expect calib-wrong-rank   "rank"                        "$m" --calib "$t/wrongrank.npy"
expect calib-garbage      "garbage.npy"                 "$m" --calib "$t/garbage.npy"
expect calib-missing      "nope.npy"                    "$m" --calib "$t/nope.npy"
expect model-missing      "nope.onnx"                   "$t/nope.onnx" --calib "$x"
expect qcdq-floor         "rounding|FLOOR|floor"        "$m" --calib "$x" --acts int8_act_per_tensor_float:round=floor
expect qcdq-16bit-act     "bits|16"                     "$m" --calib "$x" --acts int8_act_per_tensor_float:bits=16 --opset 13
expect bad-format         "format"                      "$m" --calib "$x" --format tflite
# the same FLOOR quantizer is fine in QONNX (Quant carries any rounding mode)
rm -f "$t/out.onnx"
if "$qopt" quantize "$m" --calib "$x" --acts int8_act_per_tensor_float:round=floor --format qonnx -o "$t/out.onnx" --quiet >"$t/log" 2>&1 && [ -s "$t/out.onnx" ]; then
  pass=$((pass+1)); else fail=$((fail+1)); echo "FAIL qonnx-floor"; cat "$t/log"; fi
echo "$pass passed, $fail failed"
[ $fail = 0 ]
