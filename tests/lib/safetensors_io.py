"""Reads and writes safetensors files for the Python test helpers
(tests/codegen/torch_models.py, tests/e2e/e2e.py, tests/grad/torch_grads.py
and the scripts that import them), with numpy only.

The format: an 8-byte little-endian header length, a JSON header naming
each tensor's dtype, shape and byte range, then the raw little-endian data.
st_write keeps a scalar (a 0-d array) as shape [], as the format says; it
writes F32 and I32 arrays, and F64 ones (e.g. with cast=np.float64).
"""
import json
import struct

import numpy as np

DTYPES = {"F32": np.float32, "I32": np.int32, "F64": np.float64, "I64": np.int64}
NAMES = {np.dtype(np.float32): "F32", np.dtype(np.int32): "I32",
         np.dtype(np.float64): "F64"}


def st_read(path):
    """{name: numpy array} of every tensor in the file, in its dtype."""
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    data = blob[8 + n:]
    out = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        lo, hi = meta["data_offsets"]
        arr = np.frombuffer(data[lo:hi], dtype=DTYPES[meta["dtype"]])
        out[name] = arr.reshape(meta["shape"]).copy()
    return out


def st_write(path, tensors, cast=None):
    """A safetensors file of F32, I32 and F64 arrays, scalars as shape [].
    cast: a numpy dtype every tensor is converted to first (None: keep)."""
    header, chunks, off = {}, [], 0
    for name, arr in tensors.items():
        arr = np.asarray(arr, dtype=cast)
        dtype = NAMES[arr.dtype]
        raw = arr.astype(arr.dtype.newbyteorder("<")).tobytes(order="C")
        header[name] = {"dtype": dtype, "shape": list(arr.shape),
                        "data_offsets": [off, off + len(raw)]}
        chunks.append(raw)
        off += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(chunks))
