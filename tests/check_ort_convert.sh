#!/usr/bin/env bash
# tests/check_ort_convert.sh QOPT_BINARY [FILTER]
#
# Round-trip oracle: for every model in tests/models/*.onnx, tests/models/extdata/model.onnx and
# $ONNX_TESTDATA/pytorch-converted/*/model.onnx (default ONNX_TESTDATA=/usr/share/libonnx-testdata/data),
# runs `QOPT convert IN OUT.onnx` and then `node tests/ort/compare.js IN OUT.onnx`, which runs both
# with onnxruntime (optimizations disabled, 1 thread) and requires bit-identical outputs. Inputs come
# from <model>.in/ or the case's test_data_set_0/ (compare.js finds them next to IN).
#
# Prints `PASS name`, `FAIL name: reason` (details indented below) or `SKIP name: reason` per case;
# a case is skipped only when onnxruntime itself cannot load the original model. Ends with
# `N passed, N failed[, N skipped]`; exit status 1 if any case failed, 2 on setup errors.
# FILTER (optional) keeps only cases whose name contains it. NODE overrides the node binary.
set -u

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
    echo "usage: $0 QOPT_BINARY [FILTER]" >&2
    exit 2
fi
QOPT=$1
FILTER=${2:-}
case "$QOPT" in */*) QOPT=$(cd "$(dirname "$QOPT")" && pwd)/$(basename "$QOPT") ;; esac

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
ORT_DIR=$HERE/ort
NODE=${NODE:-node}
TESTDATA=${ONNX_TESTDATA:-/usr/share/libonnx-testdata/data}

if ! command -v "$QOPT" >/dev/null 2>&1; then
    echo "error: qopt binary '$QOPT' not found or not executable" >&2
    exit 2
fi
if ! command -v "$NODE" >/dev/null 2>&1; then
    echo "error: node ('$NODE') not found; Node.js >= 18 is needed for the onnxruntime oracle" >&2
    exit 2
fi
if [ ! -d "$ORT_DIR/node_modules/onnxruntime-node" ]; then
    echo "error: onnxruntime-node is not installed: $ORT_DIR/node_modules/onnxruntime-node is missing." >&2
    echo "       install it with: (cd $ORT_DIR && npm install --ignore-scripts)" >&2
    exit 2
fi

TIMEOUT=
if command -v timeout >/dev/null 2>&1; then TIMEOUT="timeout ${QOPT_CASE_TIMEOUT:-600}"; fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/qopt-ort-convert.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

pass=0 fail=0 skip=0
n=0

# Last non-empty line of a file, whitespace squeezed (for one-line reasons).
last_line() {
    grep -v '^[[:space:]]*$' "$1" | tail -n 1 | tr -s ' \t' '  ' |
        sed 's|^onnxruntime cannot load [^ ]*: |onnxruntime cannot load the original: |' | cut -c1-300
}

run_case() {
    local name=$1 in=$2
    if [ -n "$FILTER" ] && [[ "$name" != *"$FILTER"* ]]; then return; fi
    n=$((n + 1))
    local dir=$TMP/$n
    mkdir -p "$dir"
    local out=$dir/out.onnx

    $TIMEOUT "$QOPT" convert "$in" "$out" >"$dir/convert.log" 2>&1
    local rc=$?
    if [ $rc -ne 0 ]; then
        # qopt failed: skip only if onnxruntime cannot load the original either
        "$NODE" "$ORT_DIR/compare.js" --probe "$in" >"$dir/probe.log" 2>&1
        if [ $? -eq 3 ]; then
            skip=$((skip + 1))
            echo "SKIP $name: $(last_line "$dir/probe.log")"
        else
            fail=$((fail + 1))
            echo "FAIL $name: qopt convert exited with status $rc: $(last_line "$dir/convert.log")"
        fi
        return
    fi
    if [ ! -s "$out" ]; then
        fail=$((fail + 1))
        echo "FAIL $name: qopt convert succeeded but wrote no $out"
        return
    fi

    $TIMEOUT "$NODE" "$ORT_DIR/compare.js" "$in" "$out" >"$dir/compare.log" 2>"$dir/compare.err"
    rc=$?
    case $rc in
    0)
        pass=$((pass + 1))
        echo "PASS $name"
        ;;
    3)
        skip=$((skip + 1))
        echo "SKIP $name: $(last_line "$dir/compare.log")"
        ;;
    4)
        fail=$((fail + 1))
        echo "FAIL $name: $(last_line "$dir/compare.log")"
        ;;
    *)
        fail=$((fail + 1))
        local first
        first=$(head -n 1 "$dir/compare.log" | cut -c1-300)
        if [ -z "$first" ]; then first="compare.js exited with status $rc: $(last_line "$dir/compare.err")"; fi
        case "$first" in
        MISMATCH:*" vs "*) # the report's details follow on the next lines
            echo "FAIL $name: outputs differ from the original"
            sed -n '2,16s/^/    /p' "$dir/compare.log"
            ;;
        *)
            echo "FAIL $name: ${first#MISMATCH: }"
            ;;
        esac
        ;;
    esac
}

shopt -s nullglob
for f in "$ROOT"/tests/models/*.onnx; do
    run_case "models/$(basename "$f" .onnx)" "$f"
done
if [ -f "$ROOT/tests/models/extdata/model.onnx" ]; then
    run_case "models/extdata" "$ROOT/tests/models/extdata/model.onnx"
fi
if [ -d "$TESTDATA/pytorch-converted" ]; then
    for f in "$TESTDATA"/pytorch-converted/*/model.onnx; do
        run_case "pytorch-converted/$(basename "$(dirname "$f")")" "$f"
    done
else
    echo "note: $TESTDATA/pytorch-converted not found (install libonnx-testdata); those cases are not run" >&2
fi

if [ "$skip" -gt 0 ]; then
    echo "$pass passed, $fail failed, $skip skipped"
else
    echo "$pass passed, $fail failed"
fi
[ "$fail" -eq 0 ]
