#!/usr/bin/env bash
# bench/engine_bench.sh [BUILD_DIR] — execution-engine latency: qopt (bench/engine_run, optimized
# kernels on a 2-thread pool) vs onnxruntime (bench/ort_bench.js: graph optimizations 'all',
# intraOpNumThreads 2), same models, same inputs, same script. Models (not committed) are exported
# by bench/gen_engine_models.py into $QOPT_BENCH_DIR (default /tmp/qopt-bench): full-width
# ResNet-18 and MobileNetV2 at 224x224, a transformer encoder block (seq 128, d_model 256), and
# single-Conv models of ResNet-18's distinct conv layers. Batch 1 and 16.
#
# Every (model, batch) alternates qopt and onnxruntime runs ROUNDS times (default 3) and keeps the
# best median of each, which damps interference from other processes. The outputs of the two are
# compared (max |qopt - ort| / max |ort|). QOPT_BENCH_ONLY=regex selects rows;
# QOPT_BENCH_THREADS (default 2) sets both thread counts.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
build=${1:-build}
dir=${QOPT_BENCH_DIR:-/tmp/qopt-bench}
threads=${QOPT_BENCH_THREADS:-2}
rounds=${QOPT_BENCH_ROUNDS:-3}
only=${QOPT_BENCH_ONLY:-.}
mkdir -p "$dir"
[ -f "$dir/transformer.onnx" ] && [ -f "$dir/conv_mv2_pw1x1.onnx" ] ||
    /usr/bin/python3 bench/gen_engine_models.py --out "$dir" >/dev/null 2>&1
ninja -C "$build" bench/engine_run >/dev/null
[ -d tests/ort/node_modules/onnxruntime-node ] || { echo "onnxruntime-node missing: (cd tests/ort && npm install --ignore-scripts)"; exit 2; }

# inputs (seeded) for every model and batch
/usr/bin/python3 - "$dir" <<'PY'
import os, sys, numpy as np, onnx
d = sys.argv[1]
for f in sorted(os.listdir(d)):
    if not f.endswith(".onnx"): continue
    m = onnx.load(os.path.join(d, f), load_external_data=False)
    t = m.graph.input[0].type.tensor_type
    dims = [x.dim_value for x in t.shape.dim]
    for b in (1, 16):
        p = os.path.join(d, f"{f[:-5]}.b{b}.npy")
        if os.path.exists(p): continue
        rng = np.random.default_rng(sum(map(ord, f)) + b)
        np.save(p, rng.standard_normal([b] + dims[1:]).astype(np.float32))
PY

get() { echo "$1" | awk -v k="$2" '{for (i = 1; i < NF; i++) if ($i == k) print $(i + 1)}'; }
best() { awk -v a="$1" -v b="$2" 'BEGIN{print (a == "" || b + 0 < a + 0) ? b : a}'; }
printf "%-22s %5s %12s %12s %8s %10s\n" model batch "qopt ms" "ort ms" "ort/qopt" "rel.err"
models="resnet18 mobilenetv2 transformer $(cd "$dir" && ls conv_*.onnx | sed 's/\.onnx$//' | tr '\n' ' ')"
for m in $models; do
  for b in 1 16; do
    echo "$m b$b" | grep -Eq "$only" || continue
    in="$dir/$m.b$b.npy"
    rep=10; [ "$b" = 16 ] && rep=4
    case $m in conv_*) rep=$((rep * 3));; esac
    qbest=""; obest=""
    for r in $(seq "$rounds"); do
      q=$("$build/bench/engine_run" "$dir/$m.onnx" "$in" --threads "$threads" --repeat $rep --warmup 1 --out "$dir/$m.b$b.qopt.npy")
      o=$(node bench/ort_bench.js "$dir/$m.onnx" "$in" --threads "$threads" --repeat $rep --warmup 1 --out "$dir/$m.b$b.ort.npy")
      qbest=$(best "$qbest" "$(get "$q" median_ms)"); obest=$(best "$obest" "$(get "$o" median_ms)")
    done
    err=$(/usr/bin/python3 -c "
import numpy as np, sys
a = np.load('$dir/$m.b$b.qopt.npy'); b = np.load('$dir/$m.b$b.ort.npy')
print('%.1e' % (np.abs(a - b).max() / max(np.abs(b).max(), 1e-30)) if a.shape == b.shape else 'shape!')")
    printf "%-22s %5s %12.2f %12.2f %8.2f %10s\n" "$m" "$b" "$qbest" "$obest" "$(echo "$obest/$qbest" | bc -l)" "$err"
  done
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) cores); threads $threads; best of $rounds rounds of medians"
