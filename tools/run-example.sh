#!/usr/bin/env bash
# tools/run-example.sh — set up, build, and run qopt's main job on the bundled example model:
# `qopt quantize` of examples/digits_float.onnx (a small CNN from shared/peers, BN folded, opset 13),
# calibrated on its 1,347 training images, written as QCDQ ONNX, then checked: onnxruntime and
# qopt's own JIT give bit-identical logits on the 450 test images, and the accuracy is compared with
# the float model's. Outputs go to examples/out/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build >/dev/null
q=./build/tools/qopt
out=examples/out
mkdir -p $out
echo "== qopt inspect"
$q inspect examples/digits_float.onnx
echo "== qopt quantize: W8A8 (8-bit per-channel weights, 8-bit activations, int32 bias), calibrated on the training split"
$q quantize examples/digits_float.onnx --calib examples/digits_train_x.npy -o $out/digits_w8a8.onnx \
   --report $out/digits_w8a8_report.json
echo "== qopt quantize: W4A4 with 8-bit input/output quantizers (Brevitas's io8 recipe), QONNX as well"
$q quantize examples/digits_float.onnx --calib examples/digits_train_x.npy -o $out/digits_w4a4.onnx \
   --weights int8_weight_per_channel_float:bits=4,narrow=0 --acts int8_act_per_tensor_float:bits=4 --set io_bits=8 --quiet
$q quantize examples/digits_float.onnx --calib examples/digits_train_x.npy -o $out/digits_w4a4_qonnx.onnx \
   --weights int8_weight_per_channel_float:bits=4,narrow=0 --acts int8_act_per_tensor_float:bits=4 --set io_bits=8 \
   --format qonnx --quiet
echo "wrote $out/digits_w8a8.onnx, $out/digits_w4a4.onnx (QCDQ), $out/digits_w4a4_qonnx.onnx (QONNX) and the JSON report"
echo "== the exactness contract: onnxruntime vs qopt's JIT on the written QCDQ files, 450 test images"
for f in digits_w8a8 digits_w4a4; do
  node tests/quantize/ort_run.js $out/$f.onnx examples/digits_test_x.npy $out/${f}_ort.npy
  $q run $out/$f.onnx --input examples/digits_test_x.npy --output-dir $out/${f}_qopt >/dev/null
done
$q run examples/digits_float.onnx --input examples/digits_test_x.npy --output-dir $out/float_qopt >/dev/null
/usr/bin/python3 - <<'PY'
import numpy as np
o = "examples/out"; lab = np.load("examples/digits_test_y.npy")
acc = lambda y: 100 * (y.argmax(1) == lab).mean()
print(f"float model (qopt JIT): {acc(np.load(o + '/float_qopt/logits.npy')):.2f} %")
for f in ("digits_w8a8", "digits_w4a4"):
    a, b = np.load(f"{o}/{f}_ort.npy"), np.load(f"{o}/{f}_qopt/logits.npy")
    same = a.shape == b.shape and np.array_equal(a.view(np.int32), b.view(np.int32))
    print(f"{f}: onnxruntime {acc(a):.2f} %, qopt {acc(b):.2f} %, logits bit-identical: {same}")
    assert same, f"{f}: onnxruntime and qopt disagree"
PY
