#!/usr/bin/env bash
# bench/train_bench.sh — one training step (batch 64, 2 threads, SGD lr 0.01 momentum 0.9) of Brevitas's
# three benchmark nets (tests/data/brevitas/nets, shared/peers/README.md), QAT and float, compiled by
# qopt's JIT; then, when Debian's python3-torch is installed, float PyTorch's step on the same nets in
# the same script (bench/torch_train_step.py), and the ratios of the issue's goals:
#   qopt QAT / float PyTorch (same host)            goal <= 1.5
#   qopt QAT / Brevitas QAT                         goal <= 1/3
# Brevitas itself needs pip (no network in CI); its step is taken from shared/peers/README.md (measured
# on another host) and also estimated for this host as float PyTorch here x (Brevitas / PyTorch) there.
# Usage: bench/train_bench.sh [BUILD_DIR] (default build).
set -euo pipefail
cd "$(dirname "$0")/.."
b=${1:-build}/bench/train_bench
n=tests/data/brevitas/nets
export OPENBLAS_NUM_THREADS=1
out=$(mktemp)
trap 'rm -f "$out"' EXIT
run() { "$b" "$@" | tee -a "$out"; }
run $n/lenet_w4a4_floattwin.onnx $n/lenet_w4a4_x.npy 2 30 int8_weight_per_tensor_float:bits=4 uint8_act_per_tensor_float:bits=4 io_bits=8
run $n/lenet_w4a4_floattwin.onnx $n/lenet_w4a4_x.npy 2 30
run $n/mlp_sfc_w2a2_floattwin.onnx $n/mlp_sfc_w2a2_x.npy 2 30 int8_weight_per_tensor_float:bits=2 int8_act_per_tensor_float:bits=2
run $n/mlp_sfc_w2a2_floattwin.onnx $n/mlp_sfc_w2a2_x.npy 2 30
run $n/resnet8_w8a8_perch_floattwin.onnx $n/resnet8_w8a8_perch_x.npy 2 30 int8_weight_per_channel_float uint8_act_per_tensor_float
run $n/resnet8_w8a8_perch_floattwin.onnx $n/resnet8_w8a8_perch_x.npy 2 30
# shared/peers/README.md: net, Brevitas QAT step, float PyTorch step (ms), on the host it was measured on
brevitas="lenet 15.01 4.03 mlp 6.31 3.24 resnet8 73.06 33.29"
set -- $brevitas
echo "Brevitas (README, other host): $1 $2 ms QAT / $3 ms float PyTorch; $4 $5 / $6; $7 $8 / $9"
if ! /usr/bin/python3 -c 'import torch' 2>/dev/null; then
    echo "python3-torch not installed: no same-host PyTorch comparison"
    exit 0
fi
MALLOC_TRIM_THRESHOLD_=1000000000 MALLOC_MMAP_THRESHOLD_=1000000000 \
    /usr/bin/python3 bench/torch_train_step.py 30 | tee -a "$out"
awk -v brevitas="$brevitas" '
    / QAT: step median / { split($1, p, "/"); q[net(p[length(p)])] = $5 }
    /^float PyTorch / { t[substr($3, 1, length($3) - 1)] = $6 }
    function net(f) { return f ~ /^lenet/ ? "lenet" : f ~ /^mlp/ ? "mlp" : "resnet8" }
    END {
        nb = split(brevitas, f, " ")
        for (i = 1; i + 2 <= nb; i += 3) {
            k = f[i]; bq[k] = f[i + 1]; bt[k] = f[i + 2]
            if (!(k in q) || !(k in t)) continue
            est = t[k] * bq[k] / bt[k]
            printf "%-8s qopt QAT %.2f ms: %.2fx float PyTorch here (%.2f ms; goal <= 1.5), " \
                   "%.2fx Brevitas README (%.2f ms; goal <= 0.33), %.2fx Brevitas estimated here (%.2f ms)\n",
                   k, q[k], q[k] / t[k], t[k], q[k] / bq[k], bq[k], q[k] / est, est
        }
    }' "$out"
