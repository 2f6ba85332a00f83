#!/usr/bin/python3
"""tests/writer/run_roundtrip.py — load → write → compare over Debian's libonnx-testdata.

For every <data>/{node,pytorch-converted,pytorch-operator,simple}/*/model.onnx the C driver
(roundtrip_write.c) loads the model with qo_onnx_load and writes it with qo_onnx_write into a temp
dir; compare_models.py (python3-onnx) then checks the pair is the same model and that the checker
accepts the written file. With --reload the driver also reloads the written file and compares the
two modules' qo_print_module_str text (load → write → load gives the same IR).

Outcome per case: pass | load-failed (the frontend rejected the original) | write-failed |
differ (compare_models found differences) | reload-failed | ir-differs. Prints "N passed, N failed"
and exits 1 when a case listed in --expected does not pass (a regression). --update rewrites the
expected list with the cases passing now.

usage: /usr/bin/python3 run_roundtrip.py --driver BIN [--data DIR] [--models DIR] [--expected FILE] [--update]
       [--reload] [--external N] [-j N] [-v] [CASE-SUBSTRING ...]
"""
import argparse
import multiprocessing
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare_models  # noqa: E402

SUITES = ["node", "pytorch-converted", "pytorch-operator", "simple"]
DRIVER_RC = {10: "load-failed", 11: "write-failed", 12: "reload-failed", 13: "ir-differs"}


def case_path(data, models, case):
    if case.startswith("models/"):
        return os.path.join(models, case[len("models/"):])
    return os.path.join(data, case, "model.onnx")


def run_case(job):
    driver, data, models, case, reload_ir, tmp, external = job
    src = case_path(data, models, case)
    out_dir = os.path.join(tmp, case.replace("/", "__"))
    os.makedirs(out_dir, exist_ok=True)
    out = os.path.join(out_dir, "model.onnx")
    cmd = [driver] + (["--reload"] if reload_ir else []) + (["--external", str(external)] if external else [])
    cmd += [src, out]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        return case, "write-failed", "driver timed out"
    msg = (r.stderr or "").strip().splitlines()
    errs = [x for x in msg if "error" in x or "differs" in x or "loaded" in x or "written" in x]
    detail = " | ".join(errs[:3]) if errs else " | ".join(msg[:2])
    if r.returncode == 14:
        return case, "no-print", detail
    ir_status = None
    if r.returncode in (12, 13):
        ir_status = DRIVER_RC[r.returncode]
    elif r.returncode != 0:
        return case, DRIVER_RC.get(r.returncode, "crash(rc=%d)" % r.returncode), detail
    try:
        diffs, notes = compare_models.compare(src, out)
    except Exception as e:  # noqa: BLE001
        diffs, notes = ["compare raised %s: %s" % (type(e).__name__, str(e).splitlines()[0] if str(e) else "")], []
    for f in os.listdir(out_dir):
        os.unlink(os.path.join(out_dir, f))
    os.rmdir(out_dir)
    if diffs:
        return case, "differ", " | ".join(diffs[:3])
    if ir_status:
        return case, ir_status, detail
    return case, "pass", "; ".join(notes)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--driver", required=True)
    ap.add_argument("--data", default="/usr/share/libonnx-testdata/data")
    ap.add_argument("--expected", help="committed list of cases expected to pass")
    ap.add_argument("--update", action="store_true", help="rewrite --expected with the passing cases")
    ap.add_argument("--reload", action="store_true", help="also compare IR text after reloading the output")
    ap.add_argument("--models", help="also every *.onnx under this directory (case names models/<path>)")
    ap.add_argument("--external", type=int, default=0, metavar="N",
                    help="write constants above N bytes to the external-data side file")
    ap.add_argument("-j", type=int, default=os.cpu_count() or 2)
    ap.add_argument("-v", action="store_true", help="print every non-passing case")
    ap.add_argument("filter", nargs="*")
    args = ap.parse_args()

    cases = []
    for s in SUITES:
        d = os.path.join(args.data, s)
        if not os.path.isdir(d):
            continue
        for c in sorted(os.listdir(d)):
            case = s + "/" + c
            if os.path.exists(os.path.join(d, c, "model.onnx")):
                if not args.filter or any(f in case for f in args.filter):
                    cases.append(case)
    if args.models:
        for root, _, files in sorted(os.walk(args.models)):
            for f in sorted(files):
                if f.endswith(".onnx"):
                    case = "models/" + os.path.relpath(os.path.join(root, f), args.models)
                    if not args.filter or any(x in case for x in args.filter):
                        cases.append(case)
    if not cases:
        print("no test models under %s" % args.data)
        print("0 passed, 0 failed")
        return 77

    with tempfile.TemporaryDirectory(prefix="qo-writer-") as tmp:
        jobs = [(os.path.abspath(args.driver), args.data, args.models, c, args.reload, tmp, args.external) for c in cases]
        with multiprocessing.Pool(max(1, args.j)) as pool:
            results = pool.map(run_case, jobs, chunksize=4)

    by = {}
    for case, st, detail in results:
        by.setdefault(st, []).append((case, detail))
    passed = {c for c, st, _ in results if st == "pass"}
    if "no-print" in by:
        print("NOTE: ir/print.c (qo_print_module_str) is not built: the load -> write -> load IR comparison "
              "was skipped; only the python3-onnx comparison ran")

    expected = set()
    if args.expected and os.path.exists(args.expected) and not args.update:
        with open(args.expected) as f:
            expected = {ln.strip() for ln in f if ln.strip() and not ln.startswith("#")}
        expected &= set(cases) if args.filter else expected
    regressions = sorted(expected - passed)
    new = sorted(passed - expected) if expected else []

    for st in sorted(by):
        if st == "pass":
            continue
        print("%-14s %d" % (st, len(by[st])))
        for case, detail in by[st][: (len(by[st]) if args.v else 5)]:
            print("    %s: %s" % (case, detail[:300]))
    for c in regressions:
        st, detail = next((s, d) for cc, s, d in results if cc == c)
        print("REGRESSION %s: %s: %s" % (c, st, detail[:300]))
    if new:
        print("%d case(s) pass that are not in %s (run with --update to add them)" % (len(new), args.expected))
    if args.update and args.expected:
        with open(args.expected, "w") as f:
            f.write("# cases of tests/writer/run_roundtrip.py expected to pass (regenerate with --update)\n")
            for c in sorted(passed):
                f.write(c + "\n")
        print("wrote %d cases to %s" % (len(passed), args.expected))
    print("%d passed, %d failed" % (len(passed), len(results) - len(passed)))
    return 1 if regressions else 0


if __name__ == "__main__":
    sys.exit(main())
