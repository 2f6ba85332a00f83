#!/usr/bin/python3
"""tests/writer/gen_resnet50.py — writes a ResNet-50 ONNX model (torchvision's resnet50 layout:
Bottleneck blocks [3, 4, 6, 3], 25.6 M parameters, ~98 MB of float32 weights, random weights, seed 0)
exported with torch.onnx (opset 10, like the onnx model zoo's resnet50 that libonnx-testdata's
real/test_resnet50 points to; Debian ships only its data.json, not the model). Used to measure the
writer (see bench notes in the writer report): load + write time and peak RSS.

usage: /usr/bin/python3 gen_resnet50.py OUT.onnx
"""
import sys

import torch
import torch.nn as nn


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin, width, stride, down):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, width * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(width * 4)
        self.relu = nn.ReLU(inplace=True)
        self.down = down

    def forward(self, x):
        idt = self.down(x) if self.down is not None else x
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return self.relu(y + idt)


class ResNet50(nn.Module):
    def __init__(self, classes=1000):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.pool = nn.MaxPool2d(3, 2, 1)
        layers, cin = [], 64
        for width, n, stride in [(64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)]:
            for i in range(n):
                s = stride if i == 0 else 1
                down = None
                if s != 1 or cin != width * 4:
                    down = nn.Sequential(nn.Conv2d(cin, width * 4, 1, s, bias=False), nn.BatchNorm2d(width * 4))
                layers.append(Bottleneck(cin, width, s, down))
                cin = width * 4
        self.layers = nn.Sequential(*layers)
        self.avg = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(2048, classes)

    def forward(self, x):
        x = self.pool(self.relu(self.bn1(self.conv1(x))))
        x = self.avg(self.layers(x))
        return self.fc(torch.flatten(x, 1))


def main():
    torch.manual_seed(0)
    m = ResNet50().eval()
    x = torch.randn(1, 3, 224, 224)
    torch.onnx.export(m, x, sys.argv[1], opset_version=10, input_names=["data"], output_names=["prob"],
                      do_constant_folding=False, training=torch.onnx.TrainingMode.EVAL)
    print("params:", sum(p.numel() for p in m.parameters()))


if __name__ == "__main__":
    main()
