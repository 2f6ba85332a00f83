#!/usr/bin/env bash
# bench/engine_bench.sh [BUILD_DIR] — execution-engine latency, compile time and peak memory: the
# qopt LLVM JIT (bench/engine_run --mode jit: qo_jit_compile once, then qo_jit_run timed) against
# onnxruntime (bench/ort_bench.js: graph optimizations 'all', intraOpNumThreads T,
# interOpNumThreads 1, sequential, memory arena on), same models, same inputs, same thread count,
# in one run of this script. Models (not committed) are exported by bench/gen_engine_models.py into
# $QOPT_BENCH_DIR (default /tmp/qopt-bench): full-width ResNet-18 and MobileNetV2 at 224x224 and a
# transformer encoder block (seq 128, d_model 256); QOPT_BENCH_LAYERS=1 adds single-Conv models of
# ResNet-18's distinct conv layers and two MobileNetV2 layers. Batch 1 and 16.
#
# Every (model, batch) runs ROUNDS rounds (default 5); a round runs qopt then onnxruntime, each a
# fresh process doing W warm-up runs and R timed runs (R = 20 at batch 1, 6 at batch 16) and
# reporting their median. The row gives the median over the rounds of those medians, and in
# brackets the lowest and highest round median of each (the noise). Also per row: qopt's compile
# time (qo_jit_compile) and onnxruntime's session creation time, the CPU time per run of both (user +
# system, all threads: less sensitive to other load than latency; onnxruntime's includes its
# spin-waiting threads), both processes' peak RSS
# (getrusage / process.resourceUsage; onnxruntime's includes node itself, base_rss_mb is node +
# onnxruntime loaded before the session) and max |qopt - ort| / max |ort| on the output.
# QOPT_BENCH_ONLY=regex selects rows ("resnet18 b16"); QOPT_BENCH_THREADS (default 2) sets both
# thread counts.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
dir=${QOPT_BENCH_DIR:-/tmp/qopt-bench}
threads=${QOPT_BENCH_THREADS:-2}
rounds=${QOPT_BENCH_ROUNDS:-5}
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
# median, min and max of a list of numbers
stats() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR] = $1} END {m = NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2; printf "%.4g %.4g %.4g", m, a[1], a[NR]}'; }
echo "engine_bench: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, threads $threads, $rounds rounds; load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "command: bench/engine_bench.sh $build (QOPT_BENCH_ROUNDS=$rounds QOPT_BENCH_THREADS=$threads)"
printf "| %-12s | %5s | %-20s | %-20s | %6s | %-13s | %9s | %9s | %8s | %-17s | %6s | %7s |\n" model batch \
    "qopt ms [min-max]" "ort ms [min-max]" "q/ort" "cpu ms q / ort" "compile s" "session s" "qopt MB" "ort MB" \
    "RSS q/o" "rel.err"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
models="resnet18 mobilenetv2 transformer"
[ "${QOPT_BENCH_LAYERS:-0}" = 1 ] && models="$models $(cd "$dir" && ls conv_*.onnx | sed 's/\.onnx$//' | tr '\n' ' ')"
for m in $models; do
  for b in 1 16; do
    echo "$m b$b" | grep -Eq "$only" || continue
    in="$dir/$m.b$b.npy"
    rep=20; [ "$b" = 16 ] && rep=6
    qs=""; os=""; qc=""; oc=""; qr=""; orr=""; ob=""; qu=""; ou=""
    for r in $(seq "$rounds"); do
      q=$("$build/bench/engine_run" "$dir/$m.onnx" "$in" --mode jit --threads "$threads" --repeat $rep --warmup 2 --out "$dir/$m.b$b.qopt.npy")
      o=$(node bench/ort_bench.js "$dir/$m.onnx" "$in" --threads "$threads" --repeat $rep --warmup 2 --out "$dir/$m.b$b.ort.npy")
      qs="$qs $(get "$q" median_ms)"; os="$os $(get "$o" median_ms)"
      qu="$qu $(get "$q" cpu_ms)"; ou="$ou $(get "$o" cpu_ms)"
      qc="$qc $(get "$q" compile_s)"; oc="$oc $(get "$o" session_s)"
      qr="$qr $(get "$q" peak_rss_mb)"; orr="$orr $(get "$o" peak_rss_mb)"; ob="$ob $(get "$o" base_rss_mb)"
    done
    read -r qm qlo qhi <<<"$(echo "$qs" | stats)"
    read -r om olo ohi <<<"$(echo "$os" | stats)"
    qcm=$(echo "$qc" | stats | cut -d' ' -f1); ocm=$(echo "$oc" | stats | cut -d' ' -f1)
    qum=$(echo "$qu" | stats | cut -d' ' -f1); oum=$(echo "$ou" | stats | cut -d' ' -f1)
    qrm=$(echo "$qr" | stats | cut -d' ' -f1); orm=$(echo "$orr" | stats | cut -d' ' -f1); obm=$(echo "$ob" | stats | cut -d' ' -f1)
    err=$(/usr/bin/python3 -c "
import numpy as np
a = np.load('$dir/$m.b$b.qopt.npy'); b = np.load('$dir/$m.b$b.ort.npy')
print('%.1e' % (np.abs(a - b).max() / max(np.abs(b).max(), 1e-30)) if a.shape == b.shape else 'shape!')")
    printf "| %-12s | %5s | %-20s | %-20s | %6.2f | %-13s | %9s | %9s | %8s | %-17s | %6.2f | %7s |\n" "$m" "$b" \
        "$qm [$qlo-$qhi]" "$om [$olo-$ohi]" "$(echo "$qm/$om" | bc -l)" "$qum / $oum" "$qcm" "$ocm" "$qrm" \
        "$orm (node $obm)" "$(echo "$qrm/$orm" | bc -l)" "$err"
  done
done
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
