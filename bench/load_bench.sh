#!/usr/bin/env bash
# bench/load_bench.sh [BUILD_DIR] — loading a model with ~100 MB of weights: qopt vs onnx.load
# (Debian's python3-onnx), same file, same script. Reports median time and peak RSS / file size.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
model=${QOPT_BENCH_MODEL:-/tmp/qopt-bench/big100.onnx}
mkdir -p "$(dirname "$model")"
[ -f "$model" ] || /usr/bin/python3 tools/gen_bigmodel.py "$model" >/dev/null
ninja -C "$build" bench/load_bench >/dev/null
sync
q=$("$build/bench/load_bench" "$model" 7)
p=$(/usr/bin/python3 - "$model" <<'PY'
import sys, time, resource, os, statistics, onnx
ts = []
for _ in range(5):
    t0 = time.perf_counter(); m = onnx.load(sys.argv[1]); ts.append(time.perf_counter() - t0); del m
print("median_s %.4f" % statistics.median(ts))
print("peak_rss_bytes %d" % (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024))
PY
)
get() { echo "$1" | awk -v k="$2" '$1==k{print $2}'; }
fb=$(get "$q" file_bytes)
qt=$(get "$q" median_s); qr=$(get "$q" peak_rss_bytes)
pt=$(get "$p" median_s); pr=$(get "$p" peak_rss_bytes)
printf "model %s: %.1f MB\n" "$model" "$(echo "$fb/1000000" | bc -l)"
printf "%-12s %10s %14s %12s\n" tool "median s" "peak RSS MB" "RSS/file"
printf "%-12s %10.6f %14.1f %12.2f\n" qopt "$qt" "$(echo "$qr/1000000" | bc -l)" "$(echo "$qr/$fb" | bc -l)"
printf "%-12s %10.6f %14.1f %12.2f\n" onnx.load "$pt" "$(echo "$pr/1000000" | bc -l)" "$(echo "$pr/$fb" | bc -l)"
printf "speed-up vs onnx.load: %.0fx\n" "$(echo "$pt/($qt+0.000001)" | bc -l)"
