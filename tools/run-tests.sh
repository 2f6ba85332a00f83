#!/usr/bin/env bash
# tools/run-tests.sh — set up, build and run every test. Ends with one line "N passed, N failed".
# Stages: (1) the test suite in a normal build (build/), (2) the same suite in an ASan+UBSan build
# (build-asan/), (3) bounded libFuzzer runs of the ONNX loader and the .qir parser (build-fuzz/,
# clang). Environment: QOPT_ASAN=0 skips stage 2, QOPT_FUZZ_SECONDS=N sets the time per fuzzer
# (default 60, 0 skips stage 3), QOPT_BUILD_PREFIX names the build dirs (default "build").
set -uo pipefail
cd "$(dirname "$0")/.."
pre=${QOPT_BUILD_PREFIX:-build}
fuzz_s=${QOPT_FUZZ_SECONDS:-60}
fail_line() { echo "$1"; echo "0 passed, 1 failed"; exit 1; }
bash tools/setup.sh || fail_line "setup failed"

# run_suite DIR [meson setup args...]: build DIR and run the suite; leaves DIR/meson-logs/testlog.json.
# Returns meson test's status (the number of failed tests), or BUILD_FAILED.
BUILD_FAILED=200
run_suite() {
  local dir=$1; shift
  if [ ! -f "$dir/build.ninja" ]; then
    meson setup "$dir" "$@" >"$dir.setup.log" 2>&1 || { cat "$dir.setup.log"; return $BUILD_FAILED; }
  fi
  if ! ninja -C "$dir" >"$dir/ninja.log" 2>&1; then tail -40 "$dir/ninja.log"; return $BUILD_FAILED; fi
  echo "== tests in $dir"
  meson test -C "$dir" --no-rebuild --print-errorlogs --num-processes 2 -t 8 >"$dir/test-output.log" 2>&1
  local rc=$?
  grep -E '^ *[0-9]+/[0-9]+ ' "$dir/test-output.log" | sed 's/^/  /'
  [ $rc -eq 0 ] || grep -E 'FAIL |^FAILED|Traceback|Error' "$dir/test-output.log" | head -20
  return $rc
}

logs=()
run_suite "$pre"; rc=$?
[ $rc -eq $BUILD_FAILED ] && fail_line "build failed in $pre"
logs+=("$pre/meson-logs/testlog.json:$rc")

if [ "${QOPT_ASAN:-1}" != 0 ]; then
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    run_suite "$pre-asan" -Db_sanitize=address,undefined -Db_lundef=false; rc=$?
  [ $rc -eq $BUILD_FAILED ] && fail_line "build failed in $pre-asan"
  logs+=("$pre-asan/meson-logs/testlog.json:$rc")
fi

fp=0; ff=0
if [ "$fuzz_s" != 0 ] && command -v clang >/dev/null; then
  fd="$pre-fuzz"
  if [ ! -f "$fd/build.ninja" ]; then
    CC=clang meson setup "$fd" -Dfuzz=true >"$fd.setup.log" 2>&1 || { cat "$fd.setup.log"; ff=$((ff+1)); }
  fi
  echo "== bounded fuzzing ($fuzz_s s per target)"
  for t in tests/fuzz/fuzz_load:tests/fuzz/corpus tests/ir/ir_fuzz_parse:tests/ir/fuzz_corpus; do
    exe=${t%%:*}; corpus=${t#*:}
    if ! ninja -C "$fd" "$exe" >"$fd/ninja-$(basename "$exe").log" 2>&1; then
      tail -20 "$fd/ninja-$(basename "$exe").log"; echo "  FAIL $exe (build)"; ff=$((ff+1)); continue
    fi
    work=$(mktemp -d); cp -r "$corpus/." "$work/"
    if "$fd/$exe" -max_total_time="$fuzz_s" -max_len=65536 -timeout=10 -rss_limit_mb=4096 \
         -artifact_prefix="$fd/crash-$(basename "$exe")-" "$work" >"$fd/$(basename "$exe").log" 2>&1; then
      echo "  PASS $exe ($(grep -oE '#[0-9]+' "$fd/$(basename "$exe").log" | tail -1 | tr -d '#') runs)"; fp=$((fp+1))
    else
      tail -30 "$fd/$(basename "$exe").log"; echo "  FAIL $exe (crash input saved in $fd/)"; ff=$((ff+1))
    fi
    rm -rf "$work"
  done
fi

/usr/bin/python3 tools/test-summary.py --extra "$fp,$ff" "${logs[@]}"
