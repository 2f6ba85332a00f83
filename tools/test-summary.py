#!/usr/bin/env python3
"""Usage: test-summary.py [--extra PASSED,FAILED] TESTLOG.json[:MESON_EXIT_STATUS] ...

Sums meson test logs (one per build: normal, sanitizer) into one line "N passed, N failed[, N skipped]".
A test that checks many cases prints its own "N passed, N failed" line; those counts are used (plus
one failure if the test itself failed without counting one). Other tests count as one. A non-zero
meson exit status with no failure counted (a crashed runner) counts as one failure. --extra adds
counts from stages outside meson (the bounded fuzzing runs)."""
import json, re, sys

LINE = re.compile(r"^(?:\w+: )?(\d+) passed, (\d+) failed(?:, (\d+) skipped)?\s*$", re.M)
passed = failed = skipped = 0
bad = []
args = sys.argv[1:]
if len(args) >= 2 and args[0] == "--extra":
    p, f = (int(x) for x in args[1].split(","))
    passed += p; failed += f
    args = args[2:]
for arg in args:
    path, _, rc = arg.rpartition(":") if ":" in arg else (arg, "", "0")
    tag = path.split("/")[0]
    before = failed
    try:
        lines = open(path).read().splitlines()
    except OSError:
        lines = []
        failed += 1
        bad.append(f"{path}: no test log")
    for raw in lines:
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
            bad.append(f"{tag}: {t['name']} ({res})")
    if rc not in ("0", "") and failed == before:
        failed += 1
        bad.append(f"{tag}: meson test exited with status {rc} (see its log)")
for b in bad:
    print("FAILED:", b)
print(f"{passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
sys.exit(1 if failed or passed == 0 else 0)
