#!/usr/bin/env bash
# tools/setup.sh — installs what qopt needs on Debian 12, only what is missing, then the npm
# package of the onnxruntime oracle used by the tests. Safe to run repeatedly.
set -euo pipefail
cd "$(dirname "$0")/.."

# Why each package is here (see README.md "Dependencies"):
pkgs=(
  meson ninja-build pkg-config gcc          # build
  clang libclang-rt-14-dev                  # libFuzzer for the bounded fuzzing stage of the tests
  protobuf-c-compiler libprotobuf-c-dev     # protobuf-c: ONNX (de)serialization
  libonnx-dev                               # the ONNX schema onnx.proto, compiled by protoc-c
  llvm-19-dev llvm-19-tools                 # LLVM C API (JIT backend) and FileCheck for text tests
  libopenblas-dev                           # GEMM for the runtime kernels
  libonnx-testdata                          # ONNX's own test models (oracle)
  python3-onnx python3-numpy                # onnx.checker / shape inference / numpy_helper (oracle)
  libjson-c-dev                             # json-c: quantization config files and --report JSON
  libzip-dev                                # libzip: .npz calibration/training data (zip of .npy)
)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if ! command -v node >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nodejs npm >/dev/null
fi
# onnxruntime for Node.js: the runtime oracle. --ignore-scripts: its postinstall fetches nothing we need.
if [ ! -d tests/ort/node_modules/onnxruntime-node ]; then
  echo "setup: npm install onnxruntime-node (tests/ort)"
  (cd tests/ort && npm install --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)
fi
