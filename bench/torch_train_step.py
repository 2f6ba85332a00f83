#!/usr/bin/env python3
"""bench/torch_train_step.py — float PyTorch's training step on the three benchmark nets of
shared/peers/README.md, timed on this machine, so that qopt's step (bench/train_bench.sh) is compared
with a peer run on the same host and not only with figures taken on another one.

The nets are the float twins of tests/data/brevitas/nets in plain PyTorch layers, with BatchNorm
where Brevitas's nets have it (the ONNX twins have it folded): LeNet-5 on 3x32x32, the FINN SFC MLP
784-256-256-256-10 (BatchNorm1d, hard tanh, dropout 0.2, a final affine norm) and the MLPerf-Tiny
ResNet-8. A step is zero_grad + forward + cross-entropy + backward + SGD (lr 0.01, momentum 0.9), batch
64, 2 threads, as in the README's protocol (OPENBLAS_NUM_THREADS=1 and glibc's malloc trim / mmap
thresholds raised; bench/train_bench.sh sets both before it starts Python).

Usage: python3 bench/torch_train_step.py [STEPS]   prints one line per net: median, best (ms).
"""
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

NETS = 'tests/data/brevitas/nets'


class LeNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(3, 6, 5), nn.Conv2d(6, 16, 5)
        self.fc1, self.fc2, self.fc3 = nn.Linear(400, 120), nn.Linear(120, 84), nn.Linear(84, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = x.reshape(x.shape[0], -1)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


class SFC(nn.Module):
    def __init__(self):
        super().__init__()
        layers, d = [], 784
        for _ in range(3):
            layers += [nn.Linear(d, 256, bias=False), nn.BatchNorm1d(256), nn.Hardtanh(), nn.Dropout(0.2)]
            d = 256
        self.features = nn.Sequential(*layers)
        self.out = nn.Linear(256, 10, bias=False)
        self.norm_w, self.norm_b = nn.Parameter(torch.ones(1)), nn.Parameter(torch.zeros(1))
        self.register_buffer('mean', torch.zeros(1))
        self.register_buffer('var', torch.ones(1))

    def forward(self, x):
        x = x.reshape(x.shape[0], -1) * 2.0 - 1.0
        x = self.out(self.features(x))
        return (x - self.mean) / torch.sqrt(self.var + 1e-4) * self.norm_w + self.norm_b


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout)
        self.conv2, self.bn2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout), nn.ReLU())

    def forward(self, x):
        y = F.relu(self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x))))))
        return F.relu(y + (self.down(x) if self.down is not None else x))


class ResNet8(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.bn = nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16)
        self.layers = nn.Sequential(Block(16, 16, 1), Block(16, 32, 2), Block(32, 64, 2))
        self.linear = nn.Linear(64, 10)

    def forward(self, x):
        x = self.layers(F.relu(self.bn(self.conv1(x))))
        return self.linear(F.avg_pool2d(x, 8).reshape(x.shape[0], -1))


def time_steps(model, x, steps):
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 10, (x.shape[0],), generator=g)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    model.train()
    times = []
    for i in range(steps + 5):
        t0 = time.perf_counter()
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        t1 = time.perf_counter()
        if i >= 5:  # warm-up steps are not counted
            times.append((t1 - t0) * 1e3)
    return statistics.median(times), min(times)


def main():
    steps = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    torch.set_num_threads(2)
    torch.manual_seed(0)
    for name, model, xf in (('lenet', LeNet(), 'lenet_w4a4_x.npy'), ('mlp', SFC(), 'mlp_sfc_w2a2_x.npy'),
                            ('resnet8', ResNet8(), 'resnet8_w8a8_perch_x.npy')):
        x = torch.from_numpy(np.load('%s/%s' % (NETS, xf)).astype(np.float32))
        med, best = time_steps(model, x, steps)
        print('float PyTorch %s: step median %.2f ms (best %.2f) over %d steps, batch %d, threads 2, torch %s'
              % (name, med, best, steps, x.shape[0], torch.__version__))


if __name__ == '__main__':
    main()
