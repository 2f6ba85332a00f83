#!/usr/bin/env bash
# tools/run-tests.sh — set up, build, and run every test. Ends with "N passed, N failed".
# Usage: bash tools/run-tests.sh [BUILD_DIR] [extra meson setup args...]
set -uo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh || { echo "setup failed"; echo "0 passed, 1 failed"; exit 1; }
build=${1:-build}; shift || true
if [ ! -f "$build/build.ninja" ]; then
  meson setup "$build" "$@" >/dev/null || { echo "meson setup failed"; echo "0 passed, 1 failed"; exit 1; }
fi
if ! ninja -C "$build" >"$build/ninja.log" 2>&1; then
  tail -40 "$build/ninja.log"; echo "build failed"; echo "0 passed, 1 failed"; exit 1
fi
meson test -C "$build" --no-rebuild --print-errorlogs --num-processes 2 -t 4 >"$build/test-output.log" 2>&1
rc=$?
tail -60 "$build/test-output.log" | grep -vE '^\s*$' | tail -40
/usr/bin/python3 tools/test-summary.py "$build/meson-logs/testlog.json" "$rc"
s=$?
[ $rc -eq 0 ] && [ $s -eq 0 ]
