#!/usr/bin/env python3
"""Usage: test-summary.py TESTLOG.json [MESON_TEST_EXIT_STATUS]

Sums meson's testlog.json into one line "N passed, N failed[, N skipped]".

A test that checks many cases prints its own "N passed, N failed" line; those counts are used
(plus one failure if the test itself failed without counting one). Other tests count as one."""
import json, re, sys

LINE = re.compile(r"^(?:\w+: )?(\d+) passed, (\d+) failed(?:, (\d+) skipped)?\s*$", re.M)
passed = failed = skipped = 0
bad = []
with open(sys.argv[1]) as f:
    for raw in f:
        t = json.loads(raw)
        res = t.get("result", "")
        found = LINE.findall(t.get("stdout", "") or "")
        if res == "SKIP":
            skipped += 1
            continue
        if found:
            p, fl, sk = found[-1]
            p, fl, sk = int(p), int(fl), int(sk or 0)
            if res != "OK" and fl == 0:
                fl = 1
        else:
            p, fl, sk = (1, 0, 0) if res in ("OK", "EXPECTEDFAIL") else (0, 1, 0)
        passed += p; failed += fl; skipped += sk
        if fl:
            bad.append(f"{t['name']} ({res})")
# meson's own exit status: a crash of the runner or a test that never reported counts as a failure
if len(sys.argv) > 2 and sys.argv[2] not in ("0", "") and failed == 0:
    failed += 1
    bad.append(f"meson test exited with status {sys.argv[2]} (see the test log)")
for b in bad:
    print("FAILED:", b)
print(f"{passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
sys.exit(1 if failed or passed == 0 else 0)
