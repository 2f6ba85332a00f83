#!/usr/bin/env bash
# bench/quantize_bench.sh — `qopt quantize` of the full-width ResNet-18 structure (bench/gen_engine_models.py,
# random weights, 3x224x224) with 64 calibration samples in batches of 8, load to written QCDQ file, the
# same work as Brevitas's graph-mode PTQ figures in shared/peers/README.md (calibration + bias correction +
# export: 7-9 s there). Also 128 samples, to show that peak memory does not grow with the sample count.
# Usage: bench/quantize_bench.sh [QOPT] (default build/tools/qopt). Needs /usr/bin/python3 + torch once to
# generate the model into /tmp/qopt-bench (skipped when present).
set -euo pipefail
cd "$(dirname "$0")/.."
q=${1:-build/tools/qopt}
d=/tmp/qopt-bench
[ -f $d/resnet18.onnx ] || /usr/bin/python3 bench/gen_engine_models.py --only resnet18
/usr/bin/python3 - <<'PY'
import numpy as np, os
d = "/tmp/qopt-bench"
r = np.random.RandomState(0)
for n in (64, 128):
    p = f"{d}/calib{n}.npy"
    if not os.path.exists(p):
        np.save(p, r.rand(n, 3, 224, 224).astype(np.float32))
PY
run() { # run LABEL ARGS...
  local label=$1; shift
  /usr/bin/time -f "%e %M" -o /tmp/qopt-bench/time.txt "$q" quantize $d/resnet18.onnx -o $d/resnet18_q.onnx --quiet \
    --threads 2 --batch 8 "$@" --report $d/report.json
  read -r secs kb < /tmp/qopt-bench/time.txt
  /usr/bin/python3 - "$label" "$secs" "$kb" <<'PY'
import json, sys
r = json.load(open("/tmp/qopt-bench/report.json"))["seconds"]
label, secs, kb = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
print(f"{label:34s} wall {secs:6.2f} s  peak RSS {kb / 1024:7.1f} MiB  "
      f"(prepare {r['prepare'] + r['insert']:.2f}, calibrate {r['calibrate']:.2f}, bias {r['bias']:.2f}, report {r['report']:.2f})")
PY
}
echo "qopt quantize, ResNet-18 3x224x224, OPENBLAS threads as qopt sets them, --threads 2"
for i in 1 2 3; do
  run "64 samples, no SQNR report" --calib $d/calib64.npy --no-report
done
run "64 samples, with SQNR report" --calib $d/calib64.npy
run "128 samples, no SQNR report" --calib $d/calib128.npy --no-report
echo "Brevitas graph-mode PTQ on the same structure (shared/peers/README.md): 7-9 s end to end"
