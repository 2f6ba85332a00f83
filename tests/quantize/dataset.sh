#!/usr/bin/env bash
# tests/quantize/dataset.sh — runtime/dataset.c against numpy: .npy, .npz (stored and deflated,
# several arrays), a directory mixing batch files and single samples, read in odd batch sizes; plus
# error cases (wrong rank, missing member, sample-count mismatch, garbage file) with their messages.
# Usage: dataset.sh TEST_DATASET_BINARY. Prints "N passed, N failed".
set -u
bin=$1
py=/usr/bin/python3
t=$(mktemp -d); trap 'rm -rf "$t"' EXIT
pass=0; fail=0
ok() { pass=$((pass+1)); }
bad() { fail=$((fail+1)); echo "FAIL: $*" >&2; }
$py - "$t" <<'PY'
import numpy as np, sys, os
t = sys.argv[1]
r = np.random.RandomState(0)
x = r.randn(10, 3, 4).astype(np.float32); y = r.randint(0, 9, size=10).astype(np.int64)
np.save(f"{t}/x.npy", x); np.save(f"{t}/y.npy", y)
np.savez(f"{t}/xy.npz", x=x, y=y)
np.savez_compressed(f"{t}/xyc.npz", x=x, y=y)
np.savez(f"{t}/one.npz", data=x)
os.makedirs(f"{t}/dir")
np.save(f"{t}/dir/a.npy", x[:4]); np.save(f"{t}/dir/b.npy", x[4]); np.save(f"{t}/dir/c.npy", x[5:])
np.savez(f"{t}/mismatch.npz", x=x, y=y[:7])
b = r.randint(0, 2, size=(5, 2)).astype(np.bool_); np.save(f"{t}/b.npy", b)
open(f"{t}/garbage.npy", "wb").write(b"\x93NUMPY\x01\x00\x05\x00{'de")
PY
cmp() { # cmp OUTFILE ORIGINAL.npy [member]
  $py -c "
import numpy as np,sys
a=np.load(sys.argv[1]); b=np.load(sys.argv[2]); b=b[sys.argv[3]] if len(sys.argv)>3 else b
sys.exit(0 if a.dtype==b.dtype and a.shape==b.shape and np.array_equal(a,b) else 1)" "$@"
}
run() { mkdir -p "$t/out"; rm -f "$t"/out/*; "$bin" "$@" >"$t/log" 2>&1; }
for B in 1 3 4 10 64; do
  if run "$t/x.npy" $B "$t/out" 3 && cmp "$t/out/0_0.npy" "$t/x.npy" && cmp "$t/out/0_1.npy" "$t/x.npy"; then ok; else bad "npy B=$B"; cat "$t/log"; fi
  for z in xy xyc; do
    if run "$t/$z.npz" $B "$t/out" -1 x y && cmp "$t/out/0_0.npy" "$t/$z.npz" x && cmp "$t/out/1_0.npy" "$t/$z.npz" y \
       && cmp "$t/out/1_1.npy" "$t/$z.npz" y; then ok; else bad "$z.npz B=$B"; cat "$t/log"; fi
  done
  if run "$t/dir" $B "$t/out" 3 && cmp "$t/out/0_0.npy" "$t/x.npy"; then ok; else bad "dir B=$B"; cat "$t/log"; fi
done
if run "$t/one.npz" 4 "$t/out" 3 && cmp "$t/out/0_0.npy" "$t/x.npy"; then ok; else bad "single-member npz"; fi
if run "$t/b.npy" 2 "$t/out" 2 && cmp "$t/out/0_0.npy" "$t/b.npy"; then ok; else bad "bool npy"; fi
expect_err() { # expect_err PATTERN args...
  local pat=$1; shift
  if run "$@"; then bad "expected failure: $*"; elif grep -q -- "$pat" "$t/log"; then ok; else bad "message for $*: $(cat "$t/log")"; fi
}
expect_err "expected rank 4" "$t/x.npy" 2 "$t/out" 4
expect_err "has no array 'z'" "$t/xy.npz" 2 "$t/out" -1 x z
expect_err "different numbers of samples" "$t/mismatch.npz" 2 "$t/out" -1 x y
expect_err "garbage.npy" "$t/garbage.npy" 2 "$t/out" -1
expect_err "cannot open calibration data" "$t/nope.npy" 2 "$t/out" -1
expect_err "single-input models only" "$t/x.npy" 2 "$t/out" -1 a b
echo "$pass passed, $fail failed"
[ $fail = 0 ]
