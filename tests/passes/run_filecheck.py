#!/usr/bin/env python3
"""A small lit-like runner for the .qir pass tests.

  run_filecheck.py QOPT FILECHECK DIR_OR_FILE...

Each file holds `// RUN: <shell command>` lines (in its first case) and cases separated by a line
`// -----`. Every RUN line is run once per case with:
  %s          the case's text in a temporary file (CHECK lines included, so `FileCheck %s` reads them)
  qopt        the built CLI
  FileCheck   the LLVM FileCheck binary
  not CMD     succeeds when CMD fails (with pipefail: `not qopt ... 2>&1 | FileCheck %s`)
Prints one line per failing case and ends with "N passed, N failed".
"""
import os
import re
import subprocess
import sys
import tempfile

SPLIT = re.compile(r'^// -----\s*$', re.M)


def cases(path):
    text = open(path).read()
    parts = SPLIT.split(text)
    runs = re.findall(r'^// RUN:(.*)$', parts[0], re.M)
    # keep line numbers meaningful: pad each case with the newlines of the cases before it
    out, line = [], 0
    for p in parts:
        out.append(('\n' * line) + p)
        line += p.count('\n')
    return runs, out


def main():
    if len(sys.argv) < 4:
        print(__doc__)
        return 2
    qopt, filecheck = os.path.abspath(sys.argv[1]), sys.argv[2]
    files = []
    for a in sys.argv[3:]:
        if os.path.isdir(a):
            files += sorted(os.path.join(a, f) for f in os.listdir(a) if f.endswith('.qir'))
        else:
            files.append(a)
    npass = nfail = 0
    prelude = 'set -o pipefail\nnot() { if "$@"; then return 1; else return 0; fi; }\n'
    with tempfile.TemporaryDirectory() as tmp:
        for f in files:
            runs, cs = cases(f)
            if not runs:
                print(f'FAIL: {f}: no RUN lines')
                nfail += 1
                continue
            for ci, text in enumerate(cs):
                if not text.strip() or not re.search(r'^\s*(module|// CHECK|// [A-Z-]+:)', text, re.M):
                    continue
                case = os.path.join(tmp, f'{os.path.basename(f)}.{ci}.qir')
                with open(case, 'w') as fh:
                    fh.write(text)
                for r in runs:
                    cmd = r.strip().replace('%s', case)
                    cmd = re.sub(r'(^|[|;&]\s*|not\s+)qopt\b', lambda m: m.group(1) + qopt, cmd)
                    cmd = re.sub(r'(\|\s*)FileCheck\b', lambda m: m.group(1) + filecheck, cmd)
                    p = subprocess.run(['bash', '-c', prelude + cmd], capture_output=True, text=True,
                                       cwd=os.path.dirname(os.path.abspath(f)), timeout=120)
                    if p.returncode == 0:
                        npass += 1
                    else:
                        nfail += 1
                        print(f'FAIL: {os.path.basename(f)} case {ci}: {r.strip()}')
                        for l in (p.stdout + p.stderr).strip().splitlines()[:25]:
                            print(f'    {l}')
    print(f'{npass} passed, {nfail} failed')
    return 1 if nfail else 0


if __name__ == '__main__':
    sys.exit(main())
