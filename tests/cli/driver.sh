#!/usr/bin/env bash
# tests/cli/driver.sh QOPT SRCDIR — CLI behaviour: help, version, exit codes, error messages that
# name the file, no output file on failure, inspect figures against python3-onnx.
set -u
q=$1; src=$2
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
pass=0; fail=0
ok()   { pass=$((pass+1)); echo "PASS $1"; }
bad()  { fail=$((fail+1)); echo "FAIL $1"; }
# check NAME EXPECTED_RC CMD... : runs CMD, stdout+stderr in $tmp/out, checks exit status
check() { local name=$1 want=$2; shift 2; "$@" >"$tmp/out" 2>&1; local rc=$?
  if [ "$rc" = "$want" ]; then ok "$name"; else bad "$name (exit $rc, want $want)"; sed 's/^/    /' "$tmp/out" | head -5; fi; }
has()  { if grep -qF -- "$2" "$tmp/out"; then ok "$1"; else bad "$1: output lacks '$2'"; sed 's/^/    /' "$tmp/out" | head -5; fi; }
absent() { if [ ! -e "$2" ] && [ -z "$(ls "$(dirname "$2")" | grep -F "$(basename "$2").tmp" || true)" ]; then ok "$1"; else bad "$1: $2 or a temporary exists"; fi; }

model=$src/examples/digits_float.onnx

check version 0 "$q" --version;            has version-text "qopt 0.1.0"
check help 0 "$q" --help;                  has help-text "usage: qopt <command>"
check no-args 1 "$q"
check unknown-command 1 "$q" frobnicate;   has unknown-command-msg "unknown command 'frobnicate'"
for c in inspect print convert opt verify passes; do
  check "help-$c" 0 "$q" "$c" --help;      has "help-$c-text" "usage: qopt $c"
done

check missing-file 1 "$q" inspect "$tmp/nope.onnx";  has missing-file-names-path "$tmp/nope.onnx"
printf 'this is not an onnx model\n' > "$tmp/text.onnx"
check non-onnx 1 "$q" inspect "$tmp/text.onnx";      has non-onnx-names-path "$tmp/text.onnx"
check non-onnx-convert 1 "$q" convert "$tmp/text.onnx" "$tmp/out1.onnx"
absent non-onnx-no-output "$tmp/out1.onnx"
check convert-bad-ext 1 "$q" convert "$model" "$tmp/out.xyz"; absent bad-ext-no-output "$tmp/out.xyz"
check convert-unwritable 1 "$q" convert "$model" "$tmp/no/such/dir/out.onnx"
check convert-extra-arg 1 "$q" convert "$model"
check opt-no-pipeline 1 "$q" opt "$model"
check opt-unknown-pass 1 "$q" opt "$model" -p 'no-such-pass' -o "$tmp/o.onnx"
has opt-unknown-pass-msg "no-such-pass";  absent opt-unknown-pass-no-output "$tmp/o.onnx"
check opt-bad-syntax 1 "$q" opt "$model" -p 'dce,(' -o "$tmp/o2.onnx"; absent opt-bad-syntax-no-output "$tmp/o2.onnx"

# inspect: figures against python3-onnx
check inspect 0 "$q" inspect "$model"
want=$(/usr/bin/python3 - "$model" <<'PY'
import sys, onnx, numpy as np
from onnx import numpy_helper
m = onnx.load(sys.argv[1])
n = sum(int(np.prod(t.dims)) for t in m.graph.initializer)
b = sum(numpy_helper.to_array(t).nbytes for t in m.graph.initializer)
print(f"parameters:  {n} ({b} bytes")
print(f"nodes:       {len(m.graph.node)}")
for o in m.opset_import:
    print(f"{o.domain or 'ai.onnx'}={o.version}")
for i in m.graph.input:
    print(i.name)
PY
)
while IFS= read -r line; do has "inspect: $line" "$line"; done <<< "$want"

# round trips through the CLI
check convert-onnx-qir 0 "$q" convert "$model" "$tmp/m.qir"
check convert-qir-onnx 0 "$q" convert "$tmp/m.qir" "$tmp/m2.onnx"
check print-qir 0 "$q" print "$tmp/m.qir" -o "$tmp/m2.qir"
if cmp -s "$tmp/m.qir" "$tmp/m2.qir"; then ok qir-text-roundtrip; else bad qir-text-roundtrip; fi
check verify 0 "$q" verify "$model"
check passes 0 "$q" passes; has passes-lists-dce "dce"

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
