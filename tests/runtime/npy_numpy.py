"""tests/runtime/npy_numpy.py — .npy I/O against numpy, the format's oracle.

    npy_numpy.py NPY_COPY

NPY_COPY (npy_copy.c) reads a file with qo_npy_read and writes it back with qo_npy_write. For every
supported dtype and a range of shapes (0-d, empty, rank 8) and every format version numpy writes
(1.0, 2.0, 3.0): numpy writes, qopt reads and rewrites, numpy reads back and the dtype, shape and
bytes must be identical. Files qopt must refuse (Fortran order, big-endian, complex, object) must
give exit status 1 and a message naming the file. Prints "N passed, N failed".
"""
import os
import subprocess
import sys
import tempfile

import numpy as np

copy = sys.argv[1]
npass = nfail = 0


def check(ok, what):
    global npass, nfail
    if ok:
        npass += 1
    else:
        nfail += 1
        print("FAIL", what)


rng = np.random.default_rng(7)
dtypes = ["<f2", "<f4", "<f8", "|i1", "|u1", "<i2", "<u2", "<i4", "<u4", "<i8", "<u8", "|b1"]
shapes = [(), (0,), (5,), (2, 3), (2, 0, 3), (1, 2, 1, 2, 1, 2, 1, 2), (3, 1, 4, 1, 5)]

with tempfile.TemporaryDirectory() as tmp:
    for dt in dtypes:
        for shape in shapes:
            n = int(np.prod(shape)) if shape else 1
            if dt == "|b1":
                a = rng.integers(0, 2, size=n).astype(bool)
            elif dt[1] == "f":
                a = rng.normal(size=n).astype(dt)
                special = np.array([np.nan, np.inf, -np.inf, -0.0], dtype=dt)
                a[: min(n, 4)] = special[: min(n, 4)]
            else:
                info = np.iinfo(np.dtype(dt))
                a = rng.integers(info.min, info.max, size=n, dtype=np.dtype(dt), endpoint=True)
            a = a.reshape(shape)
            for ver in [(1, 0), (2, 0), (3, 0)]:
                src = os.path.join(tmp, "in.npy")
                dst = os.path.join(tmp, "out.npy")
                with open(src, "wb") as f:
                    np.lib.format.write_array(f, a, version=ver)
                r = subprocess.run([copy, src, dst], capture_output=True, text=True)
                what = "%s %s v%d.%d" % (dt, shape, ver[0], ver[1])
                check(r.returncode == 0, what + ": qopt failed to read/write: " + r.stderr.strip())
                if r.returncode:
                    continue
                b = np.load(dst, allow_pickle=False)
                check(b.dtype == a.dtype and b.shape == a.shape and b.tobytes() == a.tobytes(),
                      what + ": numpy reads back %s %s" % (b.dtype, b.shape))
                with open(dst, "rb") as f:
                    head = f.read(10)
                    hl = head[8] | head[9] << 8
                check(head[:8] == b"\x93NUMPY\x01\x00" and (10 + hl) % 64 == 0, what + ": written header is v1.0, 64-aligned")
                os.unlink(dst)

    def refused(arr_or_bytes, words, name):
        src = os.path.join(tmp, name)
        if isinstance(arr_or_bytes, bytes):
            with open(src, "wb") as f:
                f.write(arr_or_bytes)
        else:
            np.save(src, arr_or_bytes)
        dst = os.path.join(tmp, "never.npy")
        r = subprocess.run([copy, src, dst], capture_output=True, text=True)
        check(r.returncode == 1, name + ": exit status %d, expected 1" % r.returncode)
        check(src in r.stderr and all(w in r.stderr for w in words), name + ": message: " + r.stderr.strip())
        check(not os.path.exists(dst), name + ": nothing written")

    refused(np.asfortranarray(np.arange(6, dtype=np.float32).reshape(2, 3)), ["Fortran"], "fortran.npy")
    refused(np.arange(4, dtype=">i4"), ["big-endian"], "bigendian.npy")
    refused(np.arange(4, dtype=np.complex64), ["dtype"], "complex.npy")
    refused(np.array(["ab", "c"]), ["dtype"], "strings.npy")
    refused(np.zeros((1,) * 9, dtype=np.float32), ["rank"], "rank9.npy")
    refused(b"\x93NUMPY\x01\x00\x10\x00{'descr': '<f4'", ["truncated"], "cut.npy")
    refused(b"PK\x03\x04 not an npy", ["magic"], "zip.npy")

print("%d passed, %d failed" % (npass, nfail))
sys.exit(1 if nfail else 0)
