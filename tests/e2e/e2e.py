#!/usr/bin/python3
"""Helpers of the end-to-end tests (e2e_test.sh): inputs and comparisons.

Usage:
  e2e.py inputs MODEL.nn OUT.safetensors [-D NAME=INT]... [--seed N]
                [--ids N] [--bad-id ID]
      Random values for every `input` of the model, under their names:
      f32 uniform in [-1, 1), i32 ids in 0..N-1 (default 10: every test
      size has at least 10 classes and tokens).  --bad-id puts ID at the
      last position of the first i32 input.
  e2e.py compare GOT.safetensors WANT.safetensors [--tol T]
      Prints the relative L2 error of every tensor of WANT against GOT
      (both must hold the same names and shapes); exit status 1 if one
      exceeds T (default 1e-4).
  e2e.py grads MODEL.nn PARAMS INPUTS OUT.safetensors [-D NAME=INT]...
      PyTorch's float64 gradients of a conformance model's loss (the
      cross_entropy of the .nn file's `loss = cross_entropy(A, B)` line,
      over torch_models.py's forward) for every parameter not declared
      `frozen`, plus the scalar `loss`: what `nnc run --grads` writes.
  e2e.py linear PARAMS INPUTS GRADS LOG AFTER
      Checks `nnc run --ir-in lin_grads.ir` against PyTorch in float64:
      loss = mse(x @ W + c, t) with c frozen and sgd(lr = 0.1).  From the
      PARAMS and INPUTS it ran on: GRADS must hold exactly W's gradient and
      the scalar loss, LOG the lines "step K loss L" of the training steps,
      AFTER the parameters after them (W trained, c unchanged); relative
      error 1e-5 each.

MODEL may also be nnc graph IR text, whose `input` lines read the same.

Dims come from the .nn file with the -D overrides applied, by
tests/codegen/torch_models.py's reader.  Safetensors files are read and
written by tests/lib/safetensors_io.py, whose st_write keeps scalars as
shape [].
"""
import os
import re
import sys

import numpy as np

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "codegen"))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
import torch_models  # noqa: E402  (after the path is set)
from safetensors_io import st_read, st_write  # noqa: E402

INPUT = re.compile(r"input\s+(\w+)\s*:\s*(f32|i32)\s*\[([^\]]*)\]")


def parse_flags(argv):
    """Positional arguments, -D overrides, and --name VALUE options."""
    args, overrides, opts = [], {}, {}
    it = iter(argv)
    for a in it:
        if a == "-D" or a.startswith("-D"):
            key, val = (next(it) if a == "-D" else a[2:]).split("=")
            overrides[key] = int(val)
        elif a.startswith("--"):
            opts[a[2:]] = next(it)
        else:
            args.append(a)
    return args, overrides, opts


def model_inputs(path, dims):
    """[(name, dtype, shape)] of the model's `input` lines, in order."""
    out = []
    for line in open(path, encoding="utf-8"):
        m = INPUT.match(line.split("#", 1)[0].strip())
        if m:
            shape = [int(eval(e.replace("/", "//"), {}, dict(dims)))
                     for e in m.group(3).split(",") if e.strip()]
            out.append((m.group(1), m.group(2), shape))
    return out


def make_inputs(argv):
    (model, path), overrides, opts = parse_flags(argv)
    _, dims, _ = torch_models.read_model(model, overrides)
    rng = np.random.default_rng(int(opts.get("seed", 0)))
    tensors, bad = {}, opts.get("bad-id")
    for name, dtype, shape in model_inputs(model, dims):
        if dtype == "f32":
            tensors[name] = rng.uniform(-1, 1, shape).astype(np.float32)
            continue
        ids = rng.integers(0, int(opts.get("ids", 10)), shape).astype(np.int32)
        if bad is not None:
            ids.reshape(-1)[-1] = int(bad)
            bad = None
        tensors[name] = ids
    st_write(path, tensors)


def compare(argv):
    (got_path, want_path), _, opts = parse_flags(argv)
    tol = float(opts.get("tol", 1e-4))
    got, want = st_read(got_path), st_read(want_path)
    if sorted(got) != sorted(want):
        sys.exit(f"compare: names differ: {sorted(got)} vs {sorted(want)}")
    worst = 0.0
    for name in want:
        g, w = got[name].astype(np.float64), want[name].astype(np.float64)
        if g.shape != w.shape:
            sys.exit(f"compare: {name}: shape {g.shape} vs {w.shape}")
        err = np.linalg.norm(g - w) / max(np.linalg.norm(w), 1e-30)
        print(f"{name}: relative L2 error {err:.3g} ({w.size} values)")
        worst = max(worst, err)
    if not worst <= tol:
        sys.exit(f"compare: relative L2 error {worst:.3g} exceeds {tol:g}")


def grads(argv):
    import torch
    import torch.nn.functional as F
    (model, params, inputs, out), overrides, _ = parse_flags(argv)
    name, dims, _ = torch_models.read_model(model, overrides)
    text = open(model, encoding="utf-8").read()
    logits, target = re.search(r"^loss\s*=\s*cross_entropy\((\w+),\s*(\w+)\)",
                               text, re.M).groups()
    frozen = set(re.findall(r"^param\s+(\w+)\s*:.*\bfrozen\b", text, re.M))
    as_torch = lambda a: torch.from_numpy(
        a.astype(np.float64) if a.dtype == np.float32 else a)
    p = {k: as_torch(v).requires_grad_(k not in frozen)
         for k, v in st_read(params).items()}
    x = {k: as_torch(v) for k, v in st_read(inputs).items()}
    z = torch_models.MODELS[name](p, x, dims)[logits]
    loss = F.cross_entropy(z.reshape(-1, z.shape[-1]), x[target].reshape(-1).long())
    loss.backward()
    result = {k: v.grad.numpy().astype(np.float32) for k, v in p.items()
              if k not in frozen}
    result["loss"] = np.array(loss.item(), dtype=np.float32)
    st_write(out, result)


def check_close(what, got, want, tol=1e-5):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    if got.shape != want.shape:
        sys.exit(f"linear: {what}: shape {got.shape}, expected {want.shape}")
    err = np.linalg.norm(got - want) / max(np.linalg.norm(want), 1e-30)
    print(f"{what}: relative error {err:.3g}")
    if not err <= tol:
        sys.exit(f"linear: {what}: {got} differs from PyTorch's {want}")


def linear(argv):
    import torch
    (params, inputs, grads, log, after), _, _ = parse_flags(argv)
    p, x = st_read(params), st_read(inputs)
    t64 = lambda a: torch.tensor(a.astype(np.float64))
    w = t64(p["W"]).requires_grad_(True)
    c, xs, ts = t64(p["c"]), t64(x["x"]), t64(x["t"])
    lines = open(log, encoding="utf-8").read().splitlines()
    for k in range(len(lines) + 1):
        loss = ((xs @ w + c - ts) ** 2).mean()
        loss.backward()
        if k == 0:
            g = st_read(grads)
            if sorted(g) != ["W", "loss"] or g["loss"].shape != ():
                sys.exit(f"linear: {grads} holds {sorted(g)}")
            check_close("grad W", g["W"], w.grad.numpy())
            check_close("grads loss", g["loss"], loss.item())
        if k < len(lines):
            m = re.fullmatch(r"step (\d+) loss (\S+)", lines[k])
            if not m or int(m.group(1)) != k + 1:
                sys.exit(f"linear: line {k + 1} of {log}: {lines[k]!r}")
            check_close(f"step {k + 1} loss", float(m.group(2)), loss.item())
            with torch.no_grad():
                w -= 0.1 * w.grad
        w.grad = None
    a = st_read(after)
    check_close("W after the steps", a["W"], w.detach().numpy())
    check_close("c after the steps", a["c"], c.numpy(), tol=0)


def main(argv):
    commands = {"inputs": make_inputs, "compare": compare, "grads": grads,
                "linear": linear}
    if len(argv) < 2 or argv[1] not in commands:
        sys.exit(__doc__)
    commands[argv[1]](argv[2:])


if __name__ == "__main__":
    main(sys.argv)
