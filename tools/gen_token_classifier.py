#!/usr/bin/python3
"""tools/gen_token_classifier.py — writes tests/train/token_classifier.onnx, the float model of the
transformer case of tests/train/train.sh: token ids [N, 8] in [0, 10) -> Embedding(10, 16) ->
LayerNorm -> one attention head (softmax(q k^T / 4) v, bias-free projections) + residual -> MLP
16 -> 32 -> 16 with GELU + residual -> mean over the sequence -> Linear 16 -> 4, randomly initialized
(seed 0), exported by torch.onnx at opset 17 (LayerNormalization node, GELU as Erf) with a dynamic
batch. The test trains it from scratch (QAT) to count the 3s in a sequence (label min(count, 2)).

Run with Debian's python3-torch: /usr/bin/python3 tools/gen_token_classifier.py [OUT.onnx]
"""
import math
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F


class TokenClassifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(10, 16)
        self.ln = nn.LayerNorm(16)
        self.wq = nn.Linear(16, 16, bias=False)
        self.wk = nn.Linear(16, 16, bias=False)
        self.wv = nn.Linear(16, 16, bias=False)
        self.fc1 = nn.Linear(16, 32)
        self.fc2 = nn.Linear(32, 16)
        self.fc = nn.Linear(16, 4)

    def forward(self, x):
        h = self.emb(x)
        a = self.ln(h)
        q, k, v = self.wq(a), self.wk(a), self.wv(a)
        att = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(16), dim=-1)
        h = h + att @ v
        h = h + self.fc2(F.gelu(self.fc1(h)))
        return self.fc(h.mean(dim=1))


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), '..', 'tests', 'train',
                                                            'token_classifier.onnx')
    torch.manual_seed(0)
    m = TokenClassifier().eval()
    x = torch.zeros((1, 8), dtype=torch.int64)
    torch.onnx.export(m, x, out, opset_version=17, input_names=['x'], output_names=['logits'],
                      dynamic_axes={'x': {0: 'n'}, 'logits': {0: 'n'}})
    print('wrote', out)


main()
