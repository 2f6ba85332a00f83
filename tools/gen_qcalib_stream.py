#!/usr/bin/python3
"""Oracle for tests/qcalib/test_calib_stream.c: activation scales of a tiny graph (x -> Relu -> r),
computed the way Brevitas v0.12 calibration_mode computes them (core/scaling/standalone.py
ParameterFromRuntimeStatsScaling.training_forward with momentum None: the first batch's clamped
statistic is the buffer, then buffer.mul_(c / (c+1)); buffer.add_(stat / (c+1)), float32 tensors;
core/stats/stats_op.py AbsPercentile / AbsMax / AbsMinMax; scale = buffer / threshold).
A shared quantizer (qopt_group) sees its members' batches in turn, in graph order.
Writes tests/qcalib/data/stream_x.npy and tests/qcalib/expected_stream.txt.
Run: /usr/bin/python3 tools/gen_qcalib_stream.py (numpy + torch from Debian)."""
import math
import os

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, '..', 'tests', 'qcalib')

rng = np.random.default_rng(0)
x = (rng.standard_normal((200, 3, 4, 4)) * 1.5 + 0.3).astype(np.float32)
np.save(os.path.join(OUT, 'data', 'stream_x.npy'), x)


def abs_percentile(t, q):
    k = int(math.floor(.01 * q * t.numel() + 0.5))
    return torch.kthvalue(t.abs().view(-1), k)[0]


def abs_max(t):
    return torch.max(torch.abs(t))


def abs_min_max(t):
    mx, mn = torch.max(t), torch.min(t)
    mn = torch.clamp(mn, max=torch.tensor(0.0))
    return torch.abs(mx - mn)


class Acc:
    def __init__(self):
        self.buffer = torch.ones(())  # inplace_tensor_mul(buffer, stats) at counter 0
        self.counter = 0

    def add(self, stat):
        stat = torch.clamp(stat, min=1e-10)  # scaling_min_val
        new = self.counter + 1
        if self.counter == 0:
            self.buffer.mul_(stat)
        else:
            self.buffer.mul_(self.counter / new)
            self.buffer.add_(stat / new)
        self.counter = new


lines = []
for batch in (8, 64, 200):
    grp, qc, qd = Acc(), Acc(), Acc()
    for at in range(0, x.shape[0], batch):
        xb = torch.from_numpy(x[at:at + batch])
        r = torch.relu(xb)
        # graph order: qa (x, group 1), qd (x), qc (r), qb (r, group 1)
        grp.add(abs_percentile(xb, 99.0))
        qd.add(abs_min_max(xb))
        qc.add(abs_max(r))
        grp.add(abs_percentile(r, 99.0))
    for name, acc, thr in (('group', grp, 128.0), ('absmax_u8', qc, 255.0), ('minmax_s8', qd, 128.0)):
        scale = (acc.buffer / torch.tensor(thr)).item()
        lines.append('%s %d %s' % (name, batch, float(np.float32(scale)).hex()))
with open(os.path.join(OUT, 'expected_stream.txt'), 'w') as f:
    f.write('# quantizer batch scale (float32, hex); made by tools/gen_qcalib_stream.py\n')
    f.write('\n'.join(lines) + '\n')
print('\n'.join(lines))
