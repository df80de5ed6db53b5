"""PyTorch peers of the conformance models, timed for bench/run.

Each model is written the idiomatic PyTorch way with the same dims, the same
loss and the same optimizer (and clipping) as its .nn file, float32. One
process times one model at one thread count: warm-up, then the median of
STEPS training steps (zero_grad, forward, loss, backward, clip, step) and of
STEPS forward passes under torch.inference_mode(), each step timed with
time.perf_counter_ns (CLOCK_MONOTONIC on Linux). It prints one JSON line:
train_ms, fwd_ms, loss, rss_kb (getrusage ru_maxrss of this process).
bench/run sets the tuned environment (malloc thresholds, OMP_WAIT_POLICY).

Usage: torch_bench.py MODEL THREADS WARMUP STEPS [NAME=INT]...
MODEL: mlp, rnn, lstm (nn.LSTM), lstm_cell (the hand-written cell), gpt.
"""
import json
import math
import resource
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

DEFAULTS = {
    "mlp": dict(B=128, IN=784, H=512, K=10),
    "rnn": dict(B=32, T=64, V=96, E=64, H=256),
    "lstm": dict(B=32, T=64, V=96, E=64, H=256),
    "lstm_cell": dict(B=32, T=64, V=96, E=64, H=256),
    "gpt": dict(B=8, T=64, V=256, C=128, L=4, NH=4),
}


class Mlp(nn.Module):
    def __init__(s, d):
        super().__init__()
        s.net = nn.Sequential(nn.Linear(d["IN"], d["H"]), nn.ReLU(), nn.Linear(d["H"], d["H"]),
                              nn.ReLU(), nn.Linear(d["H"], d["K"]))

    def forward(s, x):
        return s.net(x)


class Rnn(nn.Module):
    def __init__(s, d):
        super().__init__()
        s.emb = nn.Embedding(d["V"], d["E"])
        s.rnn = nn.RNN(d["E"], d["H"], nonlinearity="tanh")
        s.out = nn.Linear(d["H"], d["V"])

    def forward(s, tokens, h0):
        hs, h_last = s.rnn(s.emb(tokens), h0.unsqueeze(0))
        return s.out(hs), h_last


class Lstm(nn.Module):
    def __init__(s, d):
        super().__init__()
        s.emb = nn.Embedding(d["V"], d["E"])
        s.lstm = nn.LSTM(d["E"], d["H"])
        s.out = nn.Linear(d["H"], d["V"])

    def forward(s, tokens, h0, c0):
        hs, (h, c) = s.lstm(s.emb(tokens), (h0.unsqueeze(0), c0.unsqueeze(0)))
        return s.out(hs), h, c


class LstmCell(nn.Module):
    """The cell of conformance/lstm.nn written out, one step at a time."""

    def __init__(s, d):
        super().__init__()
        E, H = d["E"], d["H"]
        s.emb = nn.Embedding(d["V"], E)
        s.wx = nn.Parameter(torch.randn(E, 4 * H) * (1 / math.sqrt(E)))
        s.wh = nn.Parameter(torch.randn(H, 4 * H) * (1 / math.sqrt(H)))
        s.b = nn.Parameter(torch.zeros(4 * H))
        s.out = nn.Linear(H, d["V"])

    def forward(s, tokens, h, c):
        hs = []
        for xt in s.emb(tokens):
            z = xt @ s.wx + h @ s.wh + s.b
            i, f, g, o = z.chunk(4, dim=-1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
            hs.append(h)
        return s.out(torch.stack(hs)), h, c


class Block(nn.Module):
    def __init__(s, C, NH):
        super().__init__()
        s.nh = NH
        s.ln1, s.ln2 = nn.LayerNorm(C), nn.LayerNorm(C)
        s.qkv, s.proj = nn.Linear(C, 3 * C), nn.Linear(C, C)
        s.fc, s.pr = nn.Linear(C, 4 * C), nn.Linear(4 * C, C)

    def forward(s, x, mask):
        B, T, C = x.shape
        q, k, v = s.qkv(s.ln1(x)).split(C, dim=-1)
        q, k, v = (t.view(B, T, s.nh, C // s.nh).transpose(1, 2) for t in (q, k, v))
        att = (q @ k.transpose(-2, -1)) / math.sqrt(C // s.nh)
        att = torch.softmax(att.masked_fill(mask, float("-inf")), dim=-1)
        a = (att @ v).transpose(1, 2).reshape(B, T, C)
        x = x + s.proj(a)
        return x + s.pr(F.gelu(s.fc(s.ln2(x)), approximate="tanh"))


class Gpt(nn.Module):
    def __init__(s, d):
        super().__init__()
        s.wte = nn.Embedding(d["V"], d["C"])
        nn.init.normal_(s.wte.weight, std=0.02)
        s.wpe = nn.Parameter(torch.randn(d["T"], d["C"]) * 0.01)
        s.blocks = nn.ModuleList(Block(d["C"], d["NH"]) for _ in range(d["L"]))
        s.lnf = nn.LayerNorm(d["C"])
        T = d["T"]
        s.register_buffer("mask", torch.triu(torch.ones(T, T, dtype=torch.bool), 1))

    def forward(s, tokens):
        x = s.wte(tokens) + s.wpe
        for blk in s.blocks:
            x = blk(x, s.mask)
        return s.lnf(x) @ s.wte.weight.t()


def make(name, d):
    """(model, optimizer, clip, forward inputs, targets) for one configuration."""
    g = torch.Generator().manual_seed(0)
    ids = lambda hi, *shape: torch.randint(0, hi, shape, generator=g)
    unif = lambda *shape: torch.rand(shape, generator=g) * 2 - 1
    if name == "mlp":
        m = Mlp(d)
        return m, torch.optim.Adam(m.parameters(), lr=1e-3, foreach=True), None, \
            (unif(d["B"], d["IN"]),), ids(d["K"], d["B"])
    if name == "rnn":
        m = Rnn(d)
        return m, torch.optim.SGD(m.parameters(), lr=0.1, foreach=True), 5.0, \
            (ids(d["V"], d["T"], d["B"]), unif(d["B"], d["H"])), ids(d["V"], d["T"], d["B"])
    if name in ("lstm", "lstm_cell"):
        m = Lstm(d) if name == "lstm" else LstmCell(d)
        return m, torch.optim.Adam(m.parameters(), lr=2e-3, foreach=True), 5.0, \
            (ids(d["V"], d["T"], d["B"]), unif(d["B"], d["H"]), unif(d["B"], d["H"])), \
            ids(d["V"], d["T"], d["B"])
    if name == "gpt":
        m = Gpt(d)
        return m, torch.optim.AdamW(m.parameters(), lr=3e-4, weight_decay=0.1, foreach=True), 1.0, \
            (ids(d["V"], d["B"], d["T"]),), ids(d["V"], d["B"], d["T"])
    raise SystemExit(f"torch_bench: unknown model {name}")


def logits_of(out):
    return out[0] if isinstance(out, tuple) else out


def train_step(m, opt, clip, inputs, targets):
    opt.zero_grad(set_to_none=True)
    logits = logits_of(m(*inputs))
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
    loss.backward()
    if clip is not None:
        torch.nn.utils.clip_grad_norm_(m.parameters(), clip)
    opt.step()
    return loss.item()


def timed(fn, warmup, steps):
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(steps):
        t0 = time.perf_counter_ns()
        fn()
        samples.append((time.perf_counter_ns() - t0) * 1e-6)
    return statistics.median(samples)


def main():
    if len(sys.argv) < 5:
        raise SystemExit(__doc__)
    name, threads, warmup, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    d = dict(DEFAULTS[name])
    for kv in sys.argv[5:]:
        k, v = kv.split("=")
        d[k] = int(v)
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    m, opt, clip, inputs, targets = make(name, d)
    loss = [float("nan")]

    def train():
        loss[0] = train_step(m, opt, clip, inputs, targets)

    def fwd():
        with torch.inference_mode():
            m(*inputs)

    train_ms = timed(train, warmup, steps)
    fwd_ms = timed(fwd, warmup, steps)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps(dict(train_ms=train_ms, fwd_ms=fwd_ms, loss=loss[0], rss_kb=rss,
                          threads=torch.get_num_threads())))


if __name__ == "__main__":
    main()
