#!/usr/bin/env bash
# bench/train_bench.sh — one training step (batch 64, 2 threads, SGD lr 0.01 momentum 0.9) of Brevitas's
# three benchmark nets (tests/data/brevitas/nets, shared/peers/README.md), QAT and float, compiled by
# qopt's JIT; then, when Debian's python3-torch is installed, float PyTorch's step on the same nets in
# the same script (bench/torch_train_step.py), and the ratios of the issue's goals:
#   qopt QAT / float PyTorch (same host)            goal <= 1.5
#   qopt QAT / Brevitas QAT                         goal <= 1/3
# Brevitas itself needs pip (no network in CI); its step is taken from shared/peers/README.md (measured
# on another host) and also estimated for this host as float PyTorch here x (Brevitas / PyTorch) there.
# Usage: [ROUNDS=3] bench/train_bench.sh [BUILD_DIR] (default build).
set -euo pipefail
cd "$(dirname "$0")/.."
b=${1:-build}/bench/train_bench
rounds=${ROUNDS:-3}
n=tests/data/brevitas/nets
export OPENBLAS_NUM_THREADS=1
out=$(mktemp)
trap 'rm -f "$out"' EXIT
# shared/peers/README.md: net, Brevitas QAT step, float PyTorch step (ms), on the host it was measured on
brevitas="lenet 15.01 4.03 mlp 6.31 3.24 resnet8 73.06 33.29"
torch=0
/usr/bin/python3 -c 'import torch' 2>/dev/null && torch=1
# A shared host's speed drifts over minutes (other tenants): each round times qopt and PyTorch a
# few seconds apart, and the ratios are taken per round, then their median over the rounds.
run() { "$b" "$@" | tee -a "$out"; }
for r in $(seq "$rounds"); do
    echo "round $r" | tee -a "$out"
    run $n/lenet_w4a4_floattwin.onnx $n/lenet_w4a4_x.npy 2 30 int8_weight_per_tensor_float:bits=4 uint8_act_per_tensor_float:bits=4 io_bits=8
    run $n/mlp_sfc_w2a2_floattwin.onnx $n/mlp_sfc_w2a2_x.npy 2 30 int8_weight_per_tensor_float:bits=2 int8_act_per_tensor_float:bits=2
    run $n/resnet8_w8a8_perch_floattwin.onnx $n/resnet8_w8a8_perch_x.npy 2 30 int8_weight_per_channel_float uint8_act_per_tensor_float
    if [ "$r" = 1 ]; then # qopt's float step, for reference
        for f in lenet_w4a4 mlp_sfc_w2a2 resnet8_w8a8_perch; do "$b" $n/${f}_floattwin.onnx $n/${f}_x.npy 2 30; done
    fi
    if [ "$torch" = 1 ]; then
        MALLOC_TRIM_THRESHOLD_=1000000000 MALLOC_MMAP_THRESHOLD_=1000000000 \
            /usr/bin/python3 bench/torch_train_step.py 30 | tee -a "$out"
    fi
done
set -- $brevitas
echo "Brevitas (README, other host): $1 $2 ms QAT / $3 ms float PyTorch; $4 $5 / $6; $7 $8 / $9"
if [ "$torch" = 0 ]; then
    echo "python3-torch not installed: no same-host PyTorch comparison"
    exit 0
fi
awk -v brevitas="$brevitas" '
    /^round / { r = $2; nr = r }
    / QAT: step median / { split($1, p, "/"); q[net(p[length(p)]), r] = $5 }
    /^float PyTorch / { t[substr($3, 1, length($3) - 1), r] = $6 }
    function net(f) { return f ~ /^lenet/ ? "lenet" : f ~ /^mlp/ ? "mlp" : "resnet8" }
    function median(a, n,    i, j, x) { # sorts a[1..n]
        for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j - 1] > a[j]; j--) { x = a[j]; a[j] = a[j - 1]; a[j - 1] = x }
        return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    END {
        nb = split(brevitas, f, " ")
        for (i = 1; i + 2 <= nb; i += 3) {
            k = f[i]; bq = f[i + 1]; bt = f[i + 2]; m = 0
            for (r = 1; r <= nr; r++) if ((k, r) in q && (k, r) in t) { m++; Q[m] = q[k, r]; T[m] = t[k, r]; R[m] = q[k, r] / t[k, r] }
            if (!m) continue
            rt = median(R, m); mq = median(Q, m); mt = median(T, m)
            printf "%-8s over %d rounds: qopt QAT %.2f ms, float PyTorch here %.2f ms (medians); " \
                   "qopt / float PyTorch %.2fx (median of the rounds; goal <= 1.5); qopt / Brevitas README %.2fx " \
                   "(%.2f ms; goal <= 0.33); qopt / Brevitas estimated here %.2fx (PyTorch here x %.2f)\n",
                   k, m, mq, mt, rt, mq / bq, bq, rt * bt / bq, bq / bt
        }
    }' "$out"
