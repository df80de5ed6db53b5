#!/usr/bin/python3
"""PyTorch float64 references for the four conformance models.

Usage: torch_models.py MODEL.nn PARAMS.safetensors INPUTS.safetensors
                       OUTPUTS.safetensors [-D NAME=INT]...

Reads the model's dims from the .nn file (with the -D overrides applied as
nnc applies them), its parameters and inputs from safetensors files (names
and shapes as declared in the .nn file), runs the forward pass of the model
named by its `model` line in float64, and writes the outputs (float32)
under the names of its `output` line.  Needs only torch and numpy: the
safetensors files are read and written by tests/lib/safetensors_io.py,
whose st_read and st_write are re-exported here for the scripts that
import this one.
"""
import os
import re
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
from safetensors_io import st_read, st_write  # noqa: E402,F401

def read_model(path, overrides):
    """The model name, dims (overrides applied before dependants) and the
    names on the `output` line."""
    dims, name, outputs = {}, None, []
    for line in open(path, encoding="utf-8"):
        line = line.split("#", 1)[0].strip()
        m = re.match(r"model\s+(\w+)", line)
        if m:
            name = m.group(1)
        m = re.match(r"dim\s+(\w+)\s*=\s*(.+)", line)
        if m:
            key, expr = m.group(1), m.group(2).replace("/", "//")
            dims[key] = overrides[key] if key in overrides else int(eval(expr, {}, dict(dims)))
        m = re.match(r"output\s+(.+)", line)
        if m:
            outputs = [s.strip() for s in m.group(1).split(",")]
    return name, dims, outputs


def mlp(p, x, d):
    h1 = torch.relu(x["x"] @ p["W1"] + p["b1"])
    h2 = torch.relu(h1 @ p["W2"] + p["b2"])
    return {"logits": h2 @ p["W3"] + p["b3"]}


def rnn(p, x, d):
    xs = p["emb"][x["tokens"].long()]
    h, hs = x["h0"], []
    for t in range(xs.shape[0]):
        h = torch.tanh(xs[t] @ p["Wxh"] + h @ p["Whh"] + p["bh"])
        hs.append(h)
    return {"logits": torch.stack(hs) @ p["Why"] + p["by"], "h_last": h}


def lstm(p, x, d):
    xs = p["emb"][x["tokens"].long()]
    h, c, hs = x["h0"], x["c0"], []
    for t in range(xs.shape[0]):
        z = xs[t] @ p["Wx"] + h @ p["Wh"] + p["b"]
        i, f, g, o = torch.chunk(z, 4, dim=-1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        hs.append(h)
    return {"logits": torch.stack(hs) @ p["Wy"] + p["by"], "h_last": h, "c_last": c}


def gpt(p, x, d):
    B, T, C, NH = d["B"], d["T"], d["C"], d["NH"]
    HD = C // NH

    def heads(t):
        return t.reshape(B, T, NH, HD).permute(0, 2, 1, 3)

    def ln(v, g, b):
        return F.layer_norm(v, (C,), g, b, eps=1e-5)

    h = p["wte"][x["tokens"].long()] + p["wpe"]
    mask = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)
    for l in range(d["L"]):
        q, k, v = torch.split(ln(h, p["ln1_g"][l], p["ln1_b"][l]) @ p["w_qkv"][l] + p["b_qkv"][l], C, dim=-1)
        s = (heads(q) @ heads(k).transpose(-1, -2)) / (HD ** 0.5)
        a = torch.softmax(s.masked_fill(mask, float("-inf")), dim=-1) @ heads(v)
        a = a.permute(0, 2, 1, 3).reshape(B, T, C)
        h = h + a @ p["w_o"][l] + p["b_o"][l]
        m = F.gelu(ln(h, p["ln2_g"][l], p["ln2_b"][l]) @ p["w_fc"][l] + p["b_fc"][l], approximate="tanh")
        h = h + m @ p["w_pr"][l] + p["b_pr"][l]
    return {"logits": ln(h, p["lnf_g"], p["lnf_b"]) @ p["wte"].T}


MODELS = {"mlp": mlp, "rnn": rnn, "lstm": lstm, "gpt": gpt}


def parse_defines(argv):
    """The positional arguments and the -D NAME=INT (or -DNAME=INT)
    overrides of a command line (argv without the program name)."""
    args, overrides = [], {}
    it = iter(argv)
    for a in it:
        if a == "-D" or a.startswith("-D"):
            spec = next(it) if a == "-D" else a[2:]
            key, val = spec.split("=")
            overrides[key] = int(val)
        else:
            args.append(a)
    return args, overrides


def main(argv):
    args, overrides = parse_defines(argv[1:])
    if len(args) != 4:
        sys.exit(__doc__)
    model, params, inputs, outputs = args
    name, dims, out_names = read_model(model, overrides)
    as_torch = lambda arr: torch.from_numpy(arr.astype(np.float64) if arr.dtype == np.float32 else arr)
    p = {k: as_torch(v) for k, v in st_read(params).items()}
    x = {k: as_torch(v) for k, v in st_read(inputs).items()}
    with torch.no_grad():
        y = MODELS[name](p, x, dims)
    st_write(outputs, {k: y[k].numpy().astype(np.float32) for k in out_names})


if __name__ == "__main__":
    main(sys.argv)
