#!/usr/bin/python3
"""PyTorch references for the training tests (tests/train).

Usage:
  torch_train.py optim INIT.safetensors OUT_PREFIX STEPS CONFIG...
      The linear model of train_test.h (pred = (x @ W + b) * F, F frozen,
      loss = mse(pred, y)) trained STEPS steps with torch.optim in float32
      from the initial W, F, b, x, y in INIT, once per CONFIG, a string
      "opt=adam:lr=0.05:beta1=0.9:...:clip=0.5".  Writes OUT_PREFIX<k>.safetensors
      for config k: W, b and F after the steps, `loss` (the loss of each
      step, before its update), `norm` (clip_grad_norm_'s total norm of each
      step, 0 without clipping) and the optimizer state under torch.optim's
      names, "W.exp_avg", "b.momentum_buffer", ...

  torch_train.py grads MODEL.nn PARAMS INPUTS OUT [-D NAME=INT]...
      One of the four conformance models (tests/codegen/torch_models.py) in
      float64: its loss, cross_entropy(logits, targets) as the .nn file's
      `train` line says, and the gradient of every parameter, written to OUT
      under the parameter's name, plus the loss as `loss` (shape [1]).
"""
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "codegen"))
import torch_models  # noqa: E402  (st_read, st_write, read_model, MODELS)


def parse_config(text):
    cfg = {}
    for item in text.split(":"):
        key, val = item.split("=")
        cfg[key] = val if key == "opt" else float(val)
    return cfg


def make_optimizer(params, cfg):
    kind = cfg["opt"]
    if kind == "sgd":
        return torch.optim.SGD(params, lr=cfg["lr"], momentum=cfg.get("momentum", 0.0),
                               nesterov=bool(cfg.get("nesterov", 0)),
                               weight_decay=cfg.get("weight_decay", 0.0))
    cls = torch.optim.Adam if kind == "adam" else torch.optim.AdamW
    return cls(params, lr=cfg["lr"], betas=(cfg["beta1"], cfg["beta2"]), eps=cfg["eps"],
               weight_decay=cfg.get("weight_decay", 0.0))


def run_optim(init, out, steps, cfg):
    t = {k: torch.from_numpy(v.copy()) for k, v in init.items()}
    W = t["W"].clone().requires_grad_(True)
    b = t["b"].clone().requires_grad_(True)
    Fz = t["F"].clone()  # frozen: no grad, not given to the optimizer
    opt = make_optimizer([W, b], cfg)
    losses, norms = [], []
    for _ in range(steps):
        opt.zero_grad()
        loss = F.mse_loss((t["x"] @ W + b) * Fz, t["y"])
        loss.backward()
        norm = 0.0
        if cfg.get("clip", 0.0) > 0:
            norm = float(torch.nn.utils.clip_grad_norm_([W, b], cfg["clip"]))
        opt.step()
        losses.append(float(loss))
        norms.append(norm)
    res = {"W": W.detach().numpy(), "b": b.detach().numpy(), "F": Fz.numpy(),
           "loss": np.array(losses, dtype=np.float32), "norm": np.array(norms, dtype=np.float32)}
    for name, p in (("W", W), ("b", b)):
        for slot, val in opt.state[p].items():
            if slot != "step" and val is not None:
                res[name + "." + slot] = val.detach().numpy()
    torch_models.st_write(out, res)


def cmd_optim(args):
    init_path, prefix, steps = args[0], args[1], int(args[2])
    init = torch_models.st_read(init_path)
    for k, text in enumerate(args[3:]):
        run_optim(init, "%s%d.safetensors" % (prefix, k), steps, parse_config(text))


def cmd_grads(args):
    pos, overrides = [], {}
    it = iter(args)
    for a in it:
        if a == "-D" or a.startswith("-D"):
            key, val = (next(it) if a == "-D" else a[2:]).split("=")
            overrides[key] = int(val)
        else:
            pos.append(a)
    model, params_path, inputs_path, out = pos
    name, dims, _ = torch_models.read_model(model, overrides)
    p = {k: torch.from_numpy(v.astype(np.float64)).requires_grad_(True)
         for k, v in torch_models.st_read(params_path).items()}
    x = {k: torch.from_numpy(v.astype(np.float64) if v.dtype == np.float32 else v)
         for k, v in torch_models.st_read(inputs_path).items()}
    logits = torch_models.MODELS[name](p, x, dims)["logits"]
    targets = x["targets" if "targets" in x else "y"].long()
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
    loss.backward()
    res = {k: v.grad.numpy().astype(np.float32) for k, v in p.items()}
    res["loss"] = np.array([float(loss)], dtype=np.float32)
    torch_models.st_write(out, res)


def main(argv):
    if len(argv) < 2 or argv[1] not in ("optim", "grads"):
        sys.exit(__doc__)
    torch.set_num_threads(1)
    (cmd_optim if argv[1] == "optim" else cmd_grads)(argv[2:])


if __name__ == "__main__":
    main(sys.argv)
