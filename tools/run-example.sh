#!/usr/bin/env bash
# tools/run-example.sh — set up, build, and run qopt's main job on the bundled example model
# (examples/digits_float.onnx, a small CNN from shared/peers). Outputs go to examples/out/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build >/dev/null
q=./build/tools/qopt
mkdir -p examples/out
echo "== qopt inspect"
$q inspect examples/digits_float.onnx
echo "== qopt opt (canonicalize, shape inference, constant folding, dead-code elimination)"
$q opt examples/digits_float.onnx -p 'canonicalize,shape-infer,fixpoint{max=8}(const-fold,dce),verify' \
   --timing -o examples/out/digits_opt.onnx
$q print examples/out/digits_opt.onnx -o examples/out/digits_opt.qir
echo "wrote examples/out/digits_opt.onnx and examples/out/digits_opt.qir"
echo "== onnxruntime: original vs rewritten model, bit-identical outputs"
node tests/ort/compare.js examples/digits_float.onnx examples/out/digits_opt.onnx
echo "== qopt run: the 450 test images, compiled by the LLVM JIT"
$q run examples/out/digits_opt.onnx --input examples/digits_test_x.npy --output-dir examples/out/run --engine jit --repeat 5
/usr/bin/python3 - <<'PY'
import numpy as np
y = np.load("examples/out/run/logits.npy"); t = np.load("examples/digits_float_torch_test_logits.npy")
lab = np.load("examples/digits_test_y.npy")
print(f"test accuracy {100 * (y.argmax(1) == lab).mean():.2f} % (PyTorch: {100 * (t.argmax(1) == lab).mean():.2f} %), "
      f"max |qopt - PyTorch| = {np.abs(y - t).max():.2e}")
PY
