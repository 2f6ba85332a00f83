#!/usr/bin/env bash
# tests/quantize/prequant.sh — pre-quantized models through `qopt quantize`: Brevitas's QONNX exports
# become QCDQ that onnxruntime runs bit-identically to Brevitas's own QCDQ export of the same model,
# and Brevitas's QCDQ exports are re-expressed without changing one output bit (onnxruntime, graph
# optimizations off, seeded inputs via tests/ort/compare.js). Usage: prequant.sh QOPT BREVITAS_DIR ORT_DIR.
set -u
q=$1; b=$2; ort=$3
t=$(mktemp -d); trap 'rm -rf "$t"' EXIT
pass=0; fail=0
same() { # same REF OUT LABEL
  if node "$ort/compare.js" "$1" "$2" >"$t/log" 2>&1 && grep -q '^OK' "$t/log"; then pass=$((pass+1))
  else fail=$((fail+1)); echo "FAIL $3"; tail -5 "$t/log"; fi
}
for f in "$b"/digits/digits_*_qonnx.onnx; do
  n=$(basename "$f" _qonnx.onnx)
  if "$q" quantize "$f" -o "$t/$n.onnx" --quiet 2>"$t/err"; then same "$b/digits/${n}_qcdq.onnx" "$t/$n.onnx" "$n: QONNX -> QCDQ"
  else fail=$((fail+1)); echo "FAIL $n: qopt quantize"; cat "$t/err"; fi
done
for f in "$b"/digits/digits_ptq_*_qcdq.onnx "$b"/nets/lenet_w4a4_qcdq.onnx "$b"/nets/mlp_sfc_w2a2_qcdq.onnx "$b"/nets/resnet8_w8a8_perch_qcdq.onnx; do
  n=$(basename "$f" .onnx)
  if "$q" quantize "$f" -o "$t/re_$n.onnx" --quiet 2>"$t/err"; then same "$f" "$t/re_$n.onnx" "$n: QCDQ -> QCDQ"
  else fail=$((fail+1)); echo "FAIL $n: qopt quantize"; cat "$t/err"; fi
done
echo "$pass passed, $fail failed"
[ $fail = 0 ]
