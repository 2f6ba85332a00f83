#!/usr/bin/python3
"""tools/gen_token_classifier.py — writes tests/train/token_classifier.onnx, the float model of the
transformer case of tests/train/train.sh: token ids [N, 8] in [0, 10) -> Embedding(10, 16) ->
LayerNorm -> one attention head (softmax(q k^T / 4) v, bias-free projections) + residual -> MLP
16 -> 32 -> 16 with GELU + residual -> mean over the sequence -> Linear 16 -> 4, randomly initialized
(seed 0), exported by torch.onnx at opset 17 (LayerNormalization node, GELU as Erf) with a dynamic
batch. The test trains it from scratch (QAT) to count the 3s in a sequence (label min(count, 2)).

Run with Debian's python3-torch: /usr/bin/python3 tools/gen_token_classifier.py [OUT.onnx]
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_train_refs import TFM  # noqa: E402  (the model class of the autodiff reference run tfm_adam)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), '..', 'tests', 'train',
                                                            'token_classifier.onnx')
    torch.manual_seed(0)
    m = TFM(vocab=10, d=16, ff=32, ncls=4).eval()
    x = torch.zeros((1, 8), dtype=torch.int64)
    torch.onnx.export(m, x, out, opset_version=17, input_names=['x'], output_names=['logits'],
                      dynamic_axes={'x': {0: 'n'}, 'logits': {0: 'n'}})
    print('wrote', out)


main()
