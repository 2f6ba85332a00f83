#!/usr/bin/python3
"""Oracle for the bias-correction check in tests/qcalib/test_calib_stream.c: Brevitas v0.12's
bias_correction_mode (src/brevitas/graph/calibrate.py, _BiasCorrection) re-implemented with torch on a
two-layer net, one layer with a bias and one without (Brevitas then registers bias = correction):

  x -> act quant (int8, scale 1/16) -> Conv A 1x1 (W1 int4 per-channel abs-max, B1 int32) -> Relu
    -> act quant (uint8, scale 1/32) -> Conv B 3x3 pad 1 (W2 int4 per-channel, no bias) -> y

Per batch (64, the last one 8): each layer's float output (float weight and bias) and quantized output
on the same quantized input; error = mean_f - mean_q per output channel (over batch and spatial dims),
summed over batches, divided by the number of batches; later layers see the float output. Integer
bias codes = round(bias / (input scale x weight scale)) with the float32 product.
Writes tests/qcalib/data/bc_{w1,b1,w2}.npy and tests/qcalib/expected_biascorr.txt.
Run: /usr/bin/python3 tools/gen_qcalib_biascorr.py"""
import os

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, '..', 'tests', 'qcalib')
rng = np.random.default_rng(1)
w1 = (rng.standard_normal((4, 3, 1, 1)) * 0.7).astype(np.float32)
b1 = (rng.standard_normal(4) * 0.3).astype(np.float32)
w2 = (rng.standard_normal((2, 4, 3, 3)) * 0.4).astype(np.float32)
for n, a in (('bc_w1', w1), ('bc_b1', b1), ('bc_w2', w2)):
    np.save(os.path.join(OUT, 'data', n + '.npy'), a)
x = np.load(os.path.join(OUT, 'data', 'stream_x.npy'))


def fq(t, s, lo, hi):  # Brevitas IntQuant: clamp(round(x / s)) * s, round half to even
    return torch.clamp(torch.round(t / s), lo, hi) * s


def wquant(w, bits):  # per-channel abs-max, signed, narrow off: threshold 2^(b-1)
    s = (w.abs().reshape(w.shape[0], -1).max(dim=1)[0] / float(2 ** (bits - 1))).to(torch.float32)
    q = fq(w, s.reshape(-1, 1, 1, 1), -2 ** (bits - 1), 2 ** (bits - 1) - 1)
    return q, s


W1, B1, W2 = torch.from_numpy(w1), torch.from_numpy(b1), torch.from_numpy(w2)
W1q, s1 = wquant(W1, 4)
W2q, s2 = wquant(W2, 4)
in1 = torch.tensor(1.0 / 16, dtype=torch.float32)
in2 = torch.tensor(1.0 / 32, dtype=torch.float32)
bs1 = in1 * s1  # float32 products
bs2 = in2 * s2
B1q = torch.round(B1 / bs1) * bs1


def mean(t):
    t = t.transpose(0, 1)
    return t.reshape(t.shape[0], -1).mean(dim=1)


corr1 = corr2 = None
iters = 0
for at in range(0, x.shape[0], 64):
    xb = torch.from_numpy(x[at:at + 64])
    xq = fq(xb, in1, -128, 127)
    a_f = F.conv2d(xq, W1, B1)
    a_q = F.conv2d(xq, W1q, B1q)
    e1 = mean(a_f) - mean(a_q)
    r = fq(torch.relu(a_f), in2, 0, 255)
    y_f = F.conv2d(r, W2, None, padding=1)
    y_q = F.conv2d(r, W2q, None, padding=1)
    e2 = mean(y_f) - mean(y_q)
    corr1 = e1 if corr1 is None else corr1 + e1
    corr2 = e2 if corr2 is None else corr2 + e2
    iters += 1
nb1 = B1 + corr1 / iters
nb2 = corr2 / iters
codes1 = torch.round(nb1 / bs1).to(torch.int64)
codes2 = torch.round(nb2 / bs2).to(torch.int64)
with open(os.path.join(OUT, 'expected_biascorr.txt'), 'w') as f:
    f.write('# layer channel corrected_bias(float32 hex) bias_scale(hex) int32_code; tools/gen_qcalib_biascorr.py\n')
    for name, nb, bs, codes in (('A', nb1, bs1, codes1), ('B', nb2, bs2, codes2)):
        for c in range(nb.shape[0]):
            f.write('%s %d %s %s %d\n' % (name, c, float(nb[c]).hex(), float(bs[c]).hex(), int(codes[c])))
print(open(os.path.join(OUT, 'expected_biascorr.txt')).read())
