#!/usr/bin/env bash
# bench/train_bench.sh — one training step (batch 64, 2 threads, SGD lr 0.01 momentum 0.9) of Brevitas's
# three benchmark nets (tests/data/brevitas/nets, shared/peers/README.md), QAT and float, compiled by
# qopt's JIT; Brevitas's and float PyTorch's step times on this machine type are in that README.
# Usage: bench/train_bench.sh [BUILD_DIR] (default build).
set -euo pipefail
cd "$(dirname "$0")/.."
b=${1:-build}/bench/train_bench
n=tests/data/brevitas/nets
export OPENBLAS_NUM_THREADS=1
$b $n/lenet_w4a4_floattwin.onnx $n/lenet_w4a4_x.npy 2 30 int8_weight_per_tensor_float:bits=4 uint8_act_per_tensor_float:bits=4 io_bits=8
$b $n/lenet_w4a4_floattwin.onnx $n/lenet_w4a4_x.npy 2 30
$b $n/mlp_sfc_w2a2_floattwin.onnx $n/mlp_sfc_w2a2_x.npy 2 30 int8_weight_per_tensor_float:bits=2 int8_act_per_tensor_float:bits=2
$b $n/mlp_sfc_w2a2_floattwin.onnx $n/mlp_sfc_w2a2_x.npy 2 30
$b $n/resnet8_w8a8_perch_floattwin.onnx $n/resnet8_w8a8_perch_x.npy 2 30 int8_weight_per_channel_float uint8_act_per_tensor_float
$b $n/resnet8_w8a8_perch_floattwin.onnx $n/resnet8_w8a8_perch_x.npy 2 30
echo "Brevitas (README): lenet 15.01 ms QAT / 4.03 ms float PyTorch; mlp 6.31 / 3.24; resnet8 73.06 / 33.29"
