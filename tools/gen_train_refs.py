#!/usr/bin/python3
"""tools/gen_train_refs.py — torch reference data for the autodiff tests (tests/autodiff/data/).

Run with Debian's python3-torch (torch 1.13): /usr/bin/python3 tools/gen_train_refs.py [outdir]
Everything is seeded; the outputs are committed.

1. Quantizer gradients as Brevitas defines them (quant_*.npy, quant_cases.txt). IntQuant's forward
   is transcribed from Brevitas (src/brevitas/core/quant/int_base.py IntQuant.to_int/forward and
   src/brevitas/function/ops.py tensor_clamp/min_int/max_int): y = x / s; y = y + z; clamp with
   torch.where to [min_int(b), max_int(b)]; round with a straight-through estimator (RoundSte /
   FloorSte: identity backward); y = (y - z) * s. torch autograd gives d(sum(y * r))/d{x, s, b}.
   quant_cases.txt: one line per case "name signed narrow bits zeropt rounding", and the arrays
   quant_<name>_{x,s,r,dx,ds,db}.npy (float32; s has the scale's shape, db is a scalar).

2. Training trajectories (train_<run>_*.npy): an MLP (Linear 8->16, ReLU, Linear 16->4) and a small
   CNN (Conv 1->4 3x3 pad 1, BatchNorm2d (training mode), ReLU, MaxPool 2, Conv 4->8 3x3 pad 1
   groups 2, ReLU, global average pool, Linear 8->3), cross-entropy loss (mean), 20 steps on fixed
   batches:
     mlp_sgd   SGD lr 0.1, momentum 0.9, weight_decay 1e-3, StepLR(step_size=10, gamma=0.5)
     mlp_adam  Adam lr 0.01 (betas 0.9/0.999, eps 1e-8)
     cnn_sgd   SGD lr 0.05, momentum 0.9
     qat_sgd   the MLP quantization-aware (QMLP: Brevitas IntQuant transcription, learned scales),
               SGD lr 0.05, momentum 0.9; also every step's parameters and momentum buffers
               (train_qat_sgd_<P>_steps.npy and _mom_steps.npy, [21, ...]: before each step and after
               the last) for one-step comparisons from torch's own state
     mlp_kd    the MLP distilled from a fixed MLP teacher (train_mlp_kd_teacher_<P>.npy): loss =
               0.7 * 2^2 * kl_div(log_softmax(s/2), softmax(t/2), batchmean) + 0.3 * cross-entropy,
               SGD lr 0.1, momentum 0.9
     tfm_adam  TFM (Embedding, LayerNorm, one attention head, GELU MLP, residuals, mean pooling) on token
               ids (train_tfm_adam_x.npy int64), Adam lr 0.01
     qat_lb    QMLPLearnedBits through the trainer with learned bit widths (Brevitas's BitWidthParameter)
               and learned scales, SGD lr 0.2, momentum 0.9 (scales small enough that every quantizer
               clamps, so every bit width gets a gradient)
   Files: train_<run>_x.npy [20, N, ...] float32, train_<run>_y.npy [20, N] int64,
   train_<run>_loss.npy [20] (loss of each step, before its update), and per parameter P (names in
   train_runs.txt: "run param...") train_<run>_<P>_init.npy and train_<run>_<P>_final.npy (after
   20 steps). Parameter layouts are torch's (Linear weight [out, in]: Gemm transB=1). The CNN's
   BatchNorm running statistics after 20 steps (momentum 0.1, unbiased variance): train_cnn_sgd_bn_
   {mean,var}_final.npy.
"""
import math
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

OUT = os.path.join(os.path.dirname(__file__), '..', 'tests', 'autodiff', 'data')


def save(name, a):
    np.save(os.path.join(OUT, name + '.npy'), a)


# ---- 1. quantizer gradients ------------------------------------------------------------------------

class RoundSte(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return torch.round(x)

    @staticmethod
    def backward(ctx, g):
        return g


class FloorSte(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return torch.floor(x)

    @staticmethod
    def backward(ctx, g):
        return g


def max_int(signed, narrow, b):
    if not signed and not narrow:
        return (2 ** b) - 1
    if not signed and narrow:
        return (2 ** b) - 2
    return (2 ** (b - 1)) - 1


def min_int(signed, narrow, b):
    if signed and narrow:
        return -(2 ** (b - 1)) + 1
    if signed and not narrow:
        return -(2 ** (b - 1))
    return 0 * b


def tensor_clamp(x, lo, hi):
    out = torch.where(x > hi, hi.type_as(x), x)
    return torch.where(out < lo, lo.type_as(out), out)


def int_quant(x, s, z, b, signed, narrow, rnd):
    y = x / s
    y = y + z
    y = tensor_clamp(y, min_int(signed, narrow, b), max_int(signed, narrow, b))
    y = rnd.apply(y)
    y = y - z
    return y * s


QUANT_CASES = [
    # name, signed, narrow, bits, zeropt, rounding, x shape, scale, x generator
    ('s8_pt', 1, 0, 8.0, 0.0, 'ROUND', (4, 6), [0.02], lambda g, sh: torch.randn(sh, generator=g) * 1.5),
    ('s4_narrow_pc', 1, 1, 4.0, 0.0, 'ROUND', (3, 8), [[0.1], [0.2], [0.3]],
     lambda g, sh: torch.randn(sh, generator=g) * 1.2),
    ('u3_zp2', 0, 0, 3.0, 2.0, 'ROUND', (2, 10), [0.25], lambda g, sh: torch.rand(sh, generator=g) * 3.0 - 1.2),
    ('s5_floor', 1, 0, 5.0, 0.0, 'FLOOR', (5, 5), [0.1], lambda g, sh: torch.randn(sh, generator=g) * 1.4),
    # a name ending in _relu quantizes relu(x) (the activation quantizer of a CNN): its gradient mask
    # folds into QuantGrad (attribute relu)
    ('u4_relu', 0, 0, 4.0, 0.0, 'ROUND', (6, 9), [0.1], lambda g, sh: torch.randn(sh, generator=g) * 1.0),
]


def gen_quant():
    g = torch.Generator().manual_seed(1234)
    lines = []
    for name, signed, narrow, bits, zp, rnd, shape, scale, gen in QUANT_CASES:
        x = gen(g, shape).float().requires_grad_(True)
        s = torch.tensor(scale, dtype=torch.float32)
        s = s.reshape(()) if s.numel() == 1 and not isinstance(scale[0], list) else s
        s.requires_grad_(True)
        b = torch.tensor(bits, dtype=torch.float32, requires_grad=True)
        z = torch.tensor(zp, dtype=torch.float32)
        r = torch.rand(shape, generator=g) * 2 - 1
        xin = torch.relu(x) if name.endswith('_relu') else x
        y = int_quant(xin, s, z, b, bool(signed), bool(narrow), RoundSte if rnd == 'ROUND' else FloorSte)
        (y * r).sum().backward()
        for k, v in (('x', x), ('s', s), ('r', r)):
            save('quant_%s_%s' % (name, k), v.detach().numpy().astype(np.float32))
        save('quant_%s_dx' % name, x.grad.numpy().astype(np.float32))
        save('quant_%s_ds' % name, s.grad.numpy().astype(np.float32))
        save('quant_%s_db' % name, b.grad.numpy().astype(np.float32))
        lines.append('%s %d %d %g %g %s' % (name, signed, narrow, bits, zp, rnd))
    with open(os.path.join(OUT, 'quant_cases.txt'), 'w') as f:
        f.write('\n'.join(lines) + '\n')


# ---- 2. training trajectories -----------------------------------------------------------------------

class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(8, 16)
        self.fc2 = nn.Linear(16, 4)

    def forward(self, x):
        return self.fc2(F.relu(self.fc1(x)))

    def named(self):
        return [('fc1_w', self.fc1.weight), ('fc1_b', self.fc1.bias), ('fc2_w', self.fc2.weight), ('fc2_b', self.fc2.bias)]


class CNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.c2 = nn.Conv2d(4, 8, 3, padding=1, groups=2)
        self.fc = nn.Linear(8, 3)

    def forward(self, x):
        y = F.max_pool2d(F.relu(self.bn(self.c1(x))), 2)
        y = F.relu(self.c2(y))
        y = y.mean(dim=(2, 3))
        return self.fc(y)

    def named(self):
        return [('c1_w', self.c1.weight), ('c1_b', self.c1.bias), ('bn_s', self.bn.weight), ('bn_b', self.bn.bias),
                ('c2_w', self.c2.weight), ('c2_b', self.c2.bias), ('fc_w', self.fc.weight), ('fc_b', self.fc.bias)]


class TFM(nn.Module):
    """A one-block transformer classifier over token sequences: Embedding(vocab, d), LayerNorm, one
    attention head (softmax(q k^T / sqrt d) v, bias-free projections), residual, MLP d->ff->d with
    GELU (erf), residual, mean over the sequence, Linear d->ncls. The run tfm_adam uses the defaults;
    tools/gen_token_classifier.py exports a wider one."""

    def __init__(self, vocab=10, d=8, ff=16, ncls=4):
        super().__init__()
        self.d = d
        self.emb = nn.Embedding(vocab, d)
        self.ln = nn.LayerNorm(d)
        self.wq = nn.Linear(d, d, bias=False)
        self.wk = nn.Linear(d, d, bias=False)
        self.wv = nn.Linear(d, d, bias=False)
        self.fc1 = nn.Linear(d, ff)
        self.fc2 = nn.Linear(ff, d)
        self.fc = nn.Linear(d, ncls)

    def forward(self, x):
        h = self.emb(x)
        a = self.ln(h)
        q, k, v = self.wq(a), self.wk(a), self.wv(a)
        att = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(self.d), dim=-1)
        h = h + att @ v
        h = h + self.fc2(F.gelu(self.fc1(h)))
        return self.fc(h.mean(dim=1))

    def named(self):
        return [('emb', self.emb.weight), ('ln_s', self.ln.weight), ('ln_b', self.ln.bias), ('wq', self.wq.weight),
                ('wk', self.wk.weight), ('wv', self.wv.weight), ('fc1_w', self.fc1.weight), ('fc1_b', self.fc1.bias),
                ('fc2_w', self.fc2.weight), ('fc2_b', self.fc2.bias), ('fc_w', self.fc.weight), ('fc_b', self.fc.bias)]


class QMLP(nn.Module):
    """The MLP with Brevitas-style quantizers (int_quant above, learned per-tensor scales): input 8-bit
    signed (fixed scale 0.05), weights 4-bit signed narrow, hidden activation 4-bit unsigned."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(8, 16)
        self.fc2 = nn.Linear(16, 4)
        self.s_w1 = nn.Parameter(torch.tensor(0.1))
        self.s_a = nn.Parameter(torch.tensor(0.25))
        self.s_w2 = nn.Parameter(torch.tensor(0.1))

    def forward(self, x):
        z, b4, b8 = torch.tensor(0.0), torch.tensor(4.0), torch.tensor(8.0)
        x = int_quant(x, torch.tensor(0.05), z, b8, True, False, RoundSte)
        w1 = int_quant(self.fc1.weight, self.s_w1, z, b4, True, True, RoundSte)
        h = F.relu(F.linear(x, w1, self.fc1.bias))
        h = int_quant(h, self.s_a, z, b4, False, False, RoundSte)
        w2 = int_quant(self.fc2.weight, self.s_w2, z, b4, True, True, RoundSte)
        return F.linear(h, w2, self.fc2.bias)

    def named(self):
        return [('fc1_w', self.fc1.weight), ('fc1_b', self.fc1.bias), ('fc2_w', self.fc2.weight), ('fc2_b', self.fc2.bias),
                ('s_w1', self.s_w1), ('s_a', self.s_a), ('s_w2', self.s_w2)]


class AbsBinarySignGrad(torch.autograd.Function):
    """Brevitas's abs_binary_sign_grad: |x| forward; backward the sign with sign(0) = +1."""
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.abs(x)

    @staticmethod
    def backward(ctx, g):
        x, = ctx.saved_tensors
        return g * torch.where(x < 0, -torch.ones_like(x), torch.ones_like(x))


class QMLPLearnedBits(nn.Module):
    """QMLP trained as qo_trainer does with learn_bits (and learned scales, the input's too): every
    quantizer's bit width is Brevitas's BitWidthParameter (min_bit_width 2, IntRestrictValue(RoundSte)):
    round_ste(abs_binary_sign_grad(offset) + 2), the offset starting at bits - 2; the scales enter as
    |s| (positive here, so abs_binary_sign_grad and torch.abs agree). Starts: input 8 bits, fc1 weights
    4 (offset 1.51, as the test sets it, not bits - 2: it crosses 1.5 and ends at 3 bits), hidden
    activation 4, fc2 weights 2 (offset 0: only the binary sign lets it move). The biases are 8-bit
    IntBias quantized with the accumulator's scale |s_in| |s_w| recomputed every step (Brevitas's
    IntBias; 8 bits so that a stale scale would show), their bit width fixed."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(8, 16)
        self.fc2 = nn.Linear(16, 4)
        self.s_in = nn.Parameter(torch.tensor(0.02))
        self.s_w1 = nn.Parameter(torch.tensor(0.03))
        self.s_a = nn.Parameter(torch.tensor(0.05))
        self.s_w2 = nn.Parameter(torch.tensor(0.1))
        self.o_x = nn.Parameter(torch.tensor(6.0))
        self.o_w1 = nn.Parameter(torch.tensor(1.51))  # set by the test: near a rounding boundary
        self.o_a = nn.Parameter(torch.tensor(2.0))
        self.o_w2 = nn.Parameter(torch.tensor(0.0))

    @staticmethod
    def bits(o):
        return RoundSte.apply(AbsBinarySignGrad.apply(o) + 2.0)

    def forward(self, x):
        z, a = torch.tensor(0.0), torch.abs
        x = int_quant(x, a(self.s_in), z, self.bits(self.o_x), True, False, RoundSte)
        w1 = int_quant(self.fc1.weight, a(self.s_w1), z, self.bits(self.o_w1), True, True, RoundSte)
        b8 = torch.tensor(8.0)
        b1 = int_quant(self.fc1.bias, a(self.s_in) * a(self.s_w1), z, b8, True, False, RoundSte)
        h = F.relu(F.linear(x, w1, b1))
        h = int_quant(h, a(self.s_a), z, self.bits(self.o_a), False, False, RoundSte)
        w2 = int_quant(self.fc2.weight, a(self.s_w2), z, self.bits(self.o_w2), True, True, RoundSte)
        b2 = int_quant(self.fc2.bias, a(self.s_a) * a(self.s_w2), z, b8, True, False, RoundSte)
        return F.linear(h, w2, b2)

    def named(self):
        return [('fc1_w', self.fc1.weight), ('fc1_b', self.fc1.bias), ('fc2_w', self.fc2.weight), ('fc2_b', self.fc2.bias),
                ('s_in', self.s_in), ('s_w1', self.s_w1), ('s_a', self.s_a), ('s_w2', self.s_w2),
                ('xq.bit_width_offset', self.o_x), ('w1q.bit_width_offset', self.o_w1),
                ('aq.bit_width_offset', self.o_a), ('w2q.bit_width_offset', self.o_w2)]


def batches(seed, steps, n, shape, ncls):
    g = torch.Generator().manual_seed(seed)
    xs = torch.randn((steps, n) + shape, generator=g)
    proj = torch.randn((int(np.prod(shape)), ncls), generator=g)
    ys = (xs.reshape(steps, n, -1) @ proj).argmax(dim=2)
    return xs, ys


def run(name, model, opt_fn, sched_fn, xs, ys, lines, per_step=False, teacher=None, kd=None):
    for p, v in model.named():
        save('train_%s_%s_init' % (name, p), v.detach().numpy().astype(np.float32))
    opt = opt_fn(model.parameters())
    sched = sched_fn(opt) if sched_fn else None
    losses = []
    steps = {p: [] for p, _ in model.named()}
    moms = {p: [] for p, _ in model.named()}

    def record():
        for p, v in model.named():
            steps[p].append(v.detach().numpy().astype(np.float32).copy())
            st = opt.state.get(v, {}).get('momentum_buffer')
            moms[p].append(np.zeros_like(steps[p][-1]) if st is None else st.numpy().astype(np.float32).copy())

    model.train()
    for t in range(xs.shape[0]):
        if per_step:
            record()
        opt.zero_grad()
        out = model(xs[t])
        loss = F.cross_entropy(out, ys[t])
        if teacher is not None:
            T, alpha = kd
            with torch.no_grad():
                tl = teacher(xs[t])
            kl = F.kl_div(F.log_softmax(out / T, dim=1), F.softmax(tl / T, dim=1), reduction='batchmean')
            loss = alpha * T * T * kl + (1 - alpha) * loss
        losses.append(loss.item())
        loss.backward()
        opt.step()
        if sched:
            sched.step()
    if per_step:
        record()
        for p, _ in model.named():
            save('train_%s_%s_steps' % (name, p), np.stack(steps[p]))
            save('train_%s_%s_mom_steps' % (name, p), np.stack(moms[p]))
    save('train_%s_x' % name, xs.numpy().astype(np.int64 if xs.dtype == torch.int64 else np.float32))
    save('train_%s_y' % name, ys.numpy().astype(np.int64))
    save('train_%s_loss' % name, np.array(losses, dtype=np.float32))
    for p, v in model.named():
        save('train_%s_%s_final' % (name, p), v.detach().numpy().astype(np.float32))
    if hasattr(model, 'bn'):
        save('train_%s_bn_mean_final' % name, model.bn.running_mean.numpy().astype(np.float32))
        save('train_%s_bn_var_final' % name, model.bn.running_var.numpy().astype(np.float32))
    lines.append(' '.join([name] + [p for p, _ in model.named()]))


def gen_train():
    lines = []
    xs, ys = batches(7, 20, 16, (8,), 4)
    torch.manual_seed(11)
    m = MLP()
    init = {k: v.clone() for k, v in m.state_dict().items()}
    run('mlp_sgd', m, lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=1e-3),
        lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=10, gamma=0.5), xs, ys, lines)
    m = MLP()
    m.load_state_dict(init)
    run('mlp_adam', m, lambda p: torch.optim.Adam(p, lr=0.01), None, xs, ys, lines)
    xs, ys = batches(8, 20, 8, (1, 8, 8), 3)
    torch.manual_seed(12)
    run('cnn_sgd', CNN(), lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9), None, xs, ys, lines)
    xs, ys = batches(9, 20, 16, (8,), 4)
    torch.manual_seed(13)
    run('qat_sgd', QMLP(), lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9), None, xs, ys, lines, per_step=True)
    # knowledge distillation (qo_train_opts.teacher): the MLP student against a fixed MLP teacher,
    # loss = alpha T^2 kl_div(log_softmax(s/T), softmax(t/T), batchmean) + (1 - alpha) CE, T = 2, alpha = 0.7
    xs, ys = batches(10, 20, 16, (8,), 4)
    torch.manual_seed(15)
    teacher = MLP()
    for p, v in teacher.named():
        save('train_mlp_kd_teacher_%s' % p, v.detach().numpy().astype(np.float32))
    torch.manual_seed(14)
    run('mlp_kd', MLP(), lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9), None, xs, ys, lines,
        teacher=teacher, kd=(2.0, 0.7))
    # learned bit widths through the trainer (qo_train_opts.learn_bits): QMLPLearnedBits, SGD lr 0.2,
    # momentum 0.9; the final bit widths round(|offset| + 2) are compared too
    xs, ys = batches(16, 20, 16, (8,), 4)
    torch.manual_seed(17)
    m = QMLPLearnedBits()
    run('qat_lb', m, lambda p: torch.optim.SGD(p, lr=0.2, momentum=0.9), None, xs, ys, lines, per_step=True)
    print('qat_lb final bit widths', [float(m.bits(o)) for o in (m.o_x, m.o_w1, m.o_a, m.o_w2)],
          'offsets', [float(o) for o in (m.o_x, m.o_w1, m.o_a, m.o_w2)])
    # a small transformer: token ids [20, 16, 6] in [0, 10), label = (first token + count of token 3) % 4
    g = torch.Generator().manual_seed(18)
    xs = torch.randint(0, 10, (20, 16, 6), generator=g)
    ys = (xs[:, :, 0] + (xs == 3).sum(dim=2)) % 4
    torch.manual_seed(19)
    run('tfm_adam', TFM(), lambda p: torch.optim.Adam(p, lr=0.01), None, xs, ys, lines)
    with open(os.path.join(OUT, 'train_runs.txt'), 'w') as f:
        f.write('\n'.join(lines) + '\n')


if __name__ == '__main__':
    if len(sys.argv) > 1:
        OUT = sys.argv[1]
    os.makedirs(OUT, exist_ok=True)
    torch.set_num_threads(1)
    gen_quant()
    gen_train()
    print('wrote', OUT)
