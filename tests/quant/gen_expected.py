#!/usr/bin/python3
"""Writes tests/quant/expected_stats.txt: expected values for test_quant_unit.c computed with the
code of Brevitas v0.12.0 transcribed into torch (torch 1.13.1, the version Brevitas's digits runs
used): AbsPercentile / PercentileInterval / NegativePercentileOrZero (torch.kthvalue, k formulas
from core/stats/stats_op.py), the calibration buffer update (core/utils.py inplace_momentum_update,
ParameterFromRuntimeStatsScaling.training_forward), po2 scaling (PowerOfTwoRestrictValue with
CeilSte, PowerOfTwoIntScaling), MSE grid search (MSE.mse_grid_search) and IntQuant.to_int.
Cross-checked against numpy where numpy has the same definition (np.sort(|x|)[k-1]).
Usage: /usr/bin/python3 gen_expected.py > expected_stats.txt"""
import math

import numpy as np
import torch

rng = np.random.default_rng(1234)


def h(v):
    return float(np.float32(v)).hex()


arrays = {}


def arr(name, a):
    a = np.asarray(a, dtype=np.float32)
    arrays[name] = a
    print("arr", name, a.size, " ".join(h(v) for v in a))


arr("one", [-3.5])
arr("two", [0.25, -1.0])
arr("seven", [3, -1, 4, -1, 5, -9, 2])
arr("ties", [1, 1, 1, -2, -2, 2, 0, 0])
arr("n100", rng.standard_normal(100))
arr("n1000", rng.standard_normal(1000) * 3)
arr("n1001", np.abs(rng.standard_normal(1001)))
arr("skew", rng.exponential(2.0, 777) - 0.5)


def genarr(name, n, mul, mod, off, shift):
    """Large arrays as a formula both sides evaluate exactly: x[i] = ((i * mul) % mod - off) * 2**-shift
    (integers below 2**24, so exact in float32). They reach the heap selection of the tail percentiles
    with many blocks to skip, heavy ties and an ascending ramp (every element enters the heap)."""
    i = np.arange(n, dtype=np.int64)
    arrays[name] = (((i * mul) % mod - off).astype(np.float64) * 2.0 ** -shift).astype(np.float32)
    print("genarr", name, n, mul, mod, off, shift)


genarr("big", 250001, 2654435761, 1 << 24, 1 << 23, 20)
genarr("bigties", 300000, 2654435761, 4096, 2048, 8)
genarr("ramp", 100000, 1, 1 << 24, 50000, 0)
genarr("rampdown", 100000, (1 << 24) - 1, 1 << 24, (1 << 24) - 50000, 0)


def abs_pct(x, q):
    k = int(math.floor(.01 * q * x.numel() + 0.5))
    return torch.kthvalue(x.abs().view(-1), k)[0]


def neg_pct(x, q):
    k = int(math.ceil(.01 * q * x.numel()))
    return torch.clamp(torch.kthvalue(x.view(-1), k)[0], max=0.0)


def interval(x, lq, hq):
    lk = int(math.ceil(.01 * lq * x.numel()))
    hk = int(math.floor(.01 * hq * x.numel() + 0.5))
    lo = torch.clamp(torch.kthvalue(x.view(-1), lk)[0], max=0.0)
    return torch.abs(torch.kthvalue(x.view(-1), hk)[0] - lo)


for name, a in arrays.items():
    x = torch.from_numpy(a)
    for q in (99.999, 99.9, 90.0, 50.0, 100.0, 1.0):
        k = int(math.floor(.01 * q * a.size + 0.5))
        if k < 1:
            continue
        v = abs_pct(x, q)
        assert np.float32(v.item()) == np.sort(np.abs(a))[k - 1]  # numpy agrees
        print("pct", name, q, "abs", h(v.item()))
    for lq in (0.001, 1.0, 10.0):
        print("pct", name, lq, "negmin", h(neg_pct(x, lq).item()))
        print("pct", name, lq, "interval", h(interval(x, lq, 99.999).item()))

# Calibration: per-batch stat clamped to 1e-10, then true average (momentum None) or EMA (0.1).
batches = [rng.standard_normal(n).astype(np.float32) * s for n, s in ((640, 1.0), (640, 2.0), (512, 0.5),
                                                                      (640, 1.5), (33, 4.0))]
for i, b in enumerate(batches):
    arr("batch%d" % i, b)
for mode in ("average", "ema"):
    for stat in ("percentile", "absmax"):
        buf = torch.tensor(1.0)
        for c, b in enumerate(batches):
            x = torch.from_numpy(b)
            s = abs_pct(x, 99.999) if stat == "percentile" else torch.max(torch.abs(x))
            s = torch.clamp_min(s, 1e-10)
            if c == 0:
                buf.mul_(s)
            elif mode == "average":
                buf.mul_(c / (c + 1))
                buf.add_(s / (c + 1))
            else:
                buf.mul_(1 - 0.1)
                buf.add_(0.1 * s)
        print("calib", mode, stat, len(batches), h(buf.item()))
# shifted (interval + zero point from the low percentile), average
buf = torch.tensor(1.0)
zbuf = torch.tensor(0.0)
for c, b in enumerate(batches):
    x = torch.from_numpy(b)
    s = torch.clamp_min(interval(x, 0.001, 99.999), 1e-10)
    z = neg_pct(x, 0.001)
    if c == 0:
        buf.mul_(s)
        zbuf.add_(z)
    else:
        buf.mul_(c / (c + 1))
        buf.add_(s / (c + 1))
        zbuf.mul_(c / (c + 1))
        zbuf.add_(z / (c + 1))
scale = buf / 255.0
zp = torch.clamp(torch.round(torch.abs(zbuf) / scale), 0, 255)
print("shifted", len(batches), h(scale.item()), int(zp.item()))

# po2 scale: 2**ceil(log2(max(stat, 1e-10))) / (max_int(signed, False, b) + 1)
for st in (1.0, 0.75, 3.0, 4.0, 4.000001, 1e-3, 0.0, 1e-12, 123.456, 0.5, 2.0 ** -20 * 1.5):
    for bits, signed in ((8, 1), (8, 0), (4, 1), (2, 0), (16, 1)):
        t = torch.clamp_min(torch.tensor(st, dtype=torch.float32), 1e-10)
        t = torch.log2(t)
        t = torch.clamp_min(2.0 ** torch.ceil(t), 1e-10)
        thr = torch.tensor(float(2 ** (bits - 1) if signed else 2 ** bits))
        thr = 2.0 ** torch.ceil(torch.log2(thr))
        print("po2", h(st), bits, signed, h((t / thr).item()))

# MSE grid search on weights (symmetric, per tensor): candidates base*i, loss = sum of squared error
def mse_grid(x, bits, narrow, iters=20):
    init = torch.max(torch.abs(x))
    base = init / iters
    best_loss = torch.tensor(float('inf'))
    best = base
    thr = float(2 ** (bits - 1) - (1 if narrow else 0))
    lo, hi = -2 ** (bits - 1) + (1 if narrow else 0), 2 ** (bits - 1) - 1
    for i in range(2, iters + 1):
        cand = base * i
        scale = torch.clamp_min(cand, 1e-10) / thr
        q = torch.clamp(torch.round(x / scale), lo, hi) * scale
        loss = torch.sum(torch.nn.functional.mse_loss(x, q, reduction='none'))
        best = torch.where(loss < best_loss, cand, best)
        best_loss = torch.min(loss, best_loss)
    return best


for name in ("n100", "n1000", "skew"):
    x = torch.from_numpy(arrays[name])
    for bits, narrow in ((8, 1), (4, 1), (2, 0), (3, 0)):
        print("mse", name, bits, narrow, h(mse_grid(x, bits, narrow).item()))

# IntQuant.to_int with half-even rounding, per-tensor weights: absmax scale, codes
for name in ("seven", "ties", "n100"):
    x = torch.from_numpy(arrays[name])
    for bits, signed, narrow in ((8, 1, 1), (8, 1, 0), (4, 1, 0), (2, 1, 0), (8, 0, 0), (3, 0, 1)):
        thr = float(2 ** (bits - 1) - (1 if narrow else 0)) if signed else float(2 ** bits - 1 - (1 if narrow else 0))
        lo = (-2 ** (bits - 1) + (1 if narrow else 0)) if signed else 0
        hi = (2 ** (bits - 1) - 1) if signed else (2 ** bits - 1 - (1 if narrow else 0))
        scale = torch.clamp_min(torch.max(torch.abs(x)), 1e-10) / thr
        q = torch.clamp(torch.round(x / scale), lo, hi)
        print("wq", name, bits, signed, narrow, h(scale.item()), " ".join(str(int(v)) for v in q))

# k of AbsPercentile (high) and NegativePercentileOrZero (low), in Python doubles, on sizes where a
# float32 q would move k (e.g. 0.01*99.999*50000 + 0.5 lands on an integer)
for q in (99.999, 99.99, 99.9, 0.001, 50.0):
    for n in (1, 2, 3, 1000, 1001, 49999, 50000, 50001, 50002, 65536, 100000, 150000, 200000, 1347 * 1024, 10 ** 7):
        print("k", q, n, int(math.floor(.01 * q * n + 0.5)), int(math.ceil(.01 * q * n)))
