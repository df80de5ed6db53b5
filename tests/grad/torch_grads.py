#!/usr/bin/python3
"""PyTorch float64 gradients of the four conformance models.

Usage: torch_grads.py MODEL.nn PARAMS.safetensors INPUTS.safetensors
                      GRADS.safetensors [-D NAME=INT]...

The models themselves (forward passes, dims) are
tests/codegen/torch_models.py's, imported from there, and safetensors files
go through tests/lib/safetensors_io.py; this script adds the
training loss each conformance model declares (`cross_entropy(logits,
targets)`, PyTorch's mean reduction) and its backward pass.  It reads the
params and inputs (any dtype torch_models reads: F64 keeps them exact),
computes in float64, and writes F64 tensors: `loss` and `grad.NAME` for
every param, the names the autodiff pass gives its results.
"""
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "codegen"))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import torch_models  # noqa: E402
from safetensors_io import st_read, st_write  # noqa: E402

# The loss of each model: its `train` line (targets input name).
TARGETS = {"mlp": "y", "rnn": "targets", "lstm": "targets", "gpt": "targets"}


def main(argv):
    args, overrides = torch_models.parse_defines(argv[1:])
    if len(args) != 4:
        sys.exit(__doc__)
    model, params, inputs, grads = args
    name, dims, _ = torch_models.read_model(model, overrides)

    def as_torch(arr):
        return torch.from_numpy(arr.astype(np.float64) if arr.dtype.kind == "f" else arr)

    p = {k: as_torch(v).requires_grad_(True) for k, v in st_read(params).items()}
    x = {k: as_torch(v) for k, v in st_read(inputs).items()}
    logits = torch_models.MODELS[name](p, x, dims)["logits"]
    targets = x[TARGETS[name]].long()
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
    loss.backward()
    out = {"loss": loss.detach().numpy().reshape(())}
    for k, v in p.items():
        out["grad." + k] = v.grad.numpy() if v.grad is not None else np.zeros(v.shape)
    st_write(grads, out, cast=np.float64)


if __name__ == "__main__":
    main(sys.argv)
